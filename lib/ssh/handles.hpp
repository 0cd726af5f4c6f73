// Move-only owners for libssh handles. Callers see only these forward-declared types, never
// <libssh/libssh.h>. Declare a channel after its session so the channel is destroyed first.
#pragma once

#include <memory>

struct ssh_session_struct;
struct ssh_channel_struct;
struct ssh_key_struct;
struct sftp_session_struct;
struct sftp_file_struct;

namespace tn::ssh {

struct SessionDeleter { void operator()(ssh_session_struct* s) const; };   // disconnect, free
struct ChannelDeleter { void operator()(ssh_channel_struct* c) const; };   // close, free
struct KeyDeleter { void operator()(ssh_key_struct* k) const; };
struct SftpDeleter { void operator()(sftp_session_struct* s) const; };
struct SftpFileDeleter { void operator()(sftp_file_struct* f) const; };

using SessionPtr = std::unique_ptr<ssh_session_struct, SessionDeleter>;
using ChannelPtr = std::unique_ptr<ssh_channel_struct, ChannelDeleter>;
using KeyPtr = std::unique_ptr<ssh_key_struct, KeyDeleter>;
using SftpPtr = std::unique_ptr<sftp_session_struct, SftpDeleter>;
using SftpFilePtr = std::unique_ptr<sftp_file_struct, SftpFileDeleter>;

}  // namespace tn::ssh
