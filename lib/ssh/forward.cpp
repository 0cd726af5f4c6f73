// Port forwarding over libssh in non-blocking mode (see forward.hpp).
#include "ssh/forward.hpp"

#include <libssh/libssh.h>

// Exported by libssh 0.10 but missing from its headers: sends keepalive@openssh.com.
extern "C" int ssh_send_keepalive(ssh_session session);

namespace tn::ssh {

namespace {

// A name no server can have bound (RFC 2606): cancelling it completes a keepalive in the slot.
constexpr const char* slot_poll_host = "keepalive.tn-forward.invalid";

Step step(int rc) { return rc == SSH_OK ? Step::done : rc == SSH_AGAIN ? Step::again : Step::failed; }

struct EventDeleter {
    void operator()(ssh_event_struct* e) const { ssh_event_free(e); }
};

}  // namespace

struct ForwardSession::State {
    // Order matters: the packet counter (libssh writes to it) outlives the session, and the session
    // outlives the event that refers to it.
    ssh_counter_struct received{};
    Session session;
    std::unique_ptr<ssh_event_struct, EventDeleter> event;

    explicit State(Session s) : session(std::move(s)) {}
    ~State() {
        if (event) ssh_event_remove_session(event.get(), session.raw());
    }
    ssh_session raw() const { return session.raw(); }
};

Step ForwardChannel::open(const std::string& host, std::uint16_t port) {
    return step(ssh_channel_open_forward(c_.get(), host.c_str(), port, "127.0.0.1", 0));
}

std::uint32_t ForwardChannel::window() const { return ssh_channel_window_size(c_.get()); }

int ForwardChannel::write(const char* data, std::size_t size) {
    int w = ssh_channel_write(c_.get(), data, static_cast<std::uint32_t>(size));
    return w < 0 ? -1 : w;
}

int ForwardChannel::read(char* buf, std::size_t size) {
    int n = ssh_channel_read_nonblocking(c_.get(), buf, static_cast<std::uint32_t>(size), 0);
    if (n > 0) return n;
    if (n == SSH_EOF || ssh_channel_is_eof(c_.get())) return read_eof;
    return n < 0 ? read_error : 0;
}

void ForwardChannel::send_eof() { ssh_channel_send_eof(c_.get()); }

bool ForwardChannel::closed() const { return ssh_channel_is_closed(c_.get()) != 0; }

ForwardSession::ForwardSession(Session s) : st_(std::make_unique<State>(std::move(s))) {
    ssh_session raw = st_->raw();
    ssh_set_blocking(raw, 0);
    ssh_set_counters(raw, nullptr, &st_->received);
    st_->event.reset(ssh_event_new());
    ssh_event_add_session(st_->event.get(), raw);
}

ForwardSession::ForwardSession(ForwardSession&&) noexcept = default;
ForwardSession& ForwardSession::operator=(ForwardSession&&) noexcept = default;
ForwardSession::~ForwardSession() = default;

const Session& ForwardSession::session() const { return st_->session; }
int ForwardSession::fd() const { return ssh_get_fd(st_->raw()); }
bool ForwardSession::write_pending() const { return (ssh_get_poll_flags(st_->raw()) & SSH_WRITE_PENDING) != 0; }
void ForwardSession::service() { ssh_event_dopoll(st_->event.get(), 0); }
bool ForwardSession::connected() const { return ssh_is_connected(st_->raw()) != 0; }
std::uint64_t ForwardSession::packets_in() const { return st_->received.in_packets; }
std::string ForwardSession::error() const { return ssh_get_error(st_->raw()); }

ForwardChannel ForwardSession::new_channel() { return ForwardChannel(ChannelPtr(ssh_channel_new(st_->raw()))); }

std::optional<ForwardChannel> ForwardSession::accept(int& port) {
    port = 0;
    ssh_channel ch = ssh_channel_open_forward_port(st_->raw(), 0, &port, nullptr, nullptr);
    if (ch == nullptr) return std::nullopt;
    return ForwardChannel(ChannelPtr(ch));
}

Step ForwardSession::listen(const std::string& host, int port, int& bound) {
    ssh_session raw = st_->raw();
    bool wait = port == 0;
    if (wait) ssh_set_blocking(raw, 1);
    int rc = ssh_channel_listen_forward(raw, host.c_str(), port, &bound);
    if (wait) ssh_set_blocking(raw, 0);
    return step(rc);
}

Step ForwardSession::cancel(const std::string& host, int port) {
    return step(ssh_channel_cancel_forward(st_->raw(), host.c_str(), port));
}

void ForwardSession::send_keepalive() { ssh_send_keepalive(st_->raw()); }

Step ForwardSession::poll_keepalive() { return step(ssh_channel_cancel_forward(st_->raw(), slot_poll_host, 0)); }

void ForwardSession::drop() {
    if (st_->event) ssh_event_remove_session(st_->event.get(), st_->raw());
    st_->event.reset();
    ssh_silent_disconnect(st_->raw());
}

}  // namespace tn::ssh
