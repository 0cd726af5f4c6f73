// Deleters for the libssh handle owners.
#include "ssh/handles.hpp"

#include <libssh/libssh.h>
#include <libssh/sftp.h>

namespace tn::ssh {

void SessionDeleter::operator()(ssh_session_struct* s) const {
    if (ssh_is_connected(s)) ssh_disconnect(s);
    ssh_free(s);
}
void ChannelDeleter::operator()(ssh_channel_struct* c) const {
    if (ssh_channel_is_open(c)) ssh_channel_close(c);
    ssh_channel_free(c);
}
void KeyDeleter::operator()(ssh_key_struct* k) const { ssh_key_free(k); }
void SftpDeleter::operator()(sftp_session_struct* s) const { sftp_free(s); }
void SftpFileDeleter::operator()(sftp_file_struct* f) const { sftp_close(f); }

}  // namespace tn::ssh
