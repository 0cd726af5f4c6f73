// --sudo through a --persist master: the password's round trip on the request socket.
#include "persist_sudo.hpp"

#include "persist_wire.hpp"

namespace tn::exec {

namespace {
constexpr std::string_view kAsk = "password ";
constexpr std::string_view kGive = "pw ";
constexpr std::string_view kRefuse = "nopw ";

// A frame that held a password: wiped before its memory goes back.
struct WipedFrame {
    std::string text;
    ~WipedFrame() {
        volatile char* p = text.data();
        for (std::size_t i = 0; i < text.size(); ++i) p[i] = 0;
    }
};
}  // namespace

std::shared_ptr<const Secret> ask_client_for_password(int conn, const std::string& prompt) {
    wire::send_frame(conn, std::string(kAsk) + prompt, {});
    WipedFrame answer{wire::recv_frame(conn, nullptr)};
    if (answer.text.rfind(kGive, 0) == 0) return std::make_shared<const Secret>(answer.text.substr(kGive.size()));
    if (answer.text.rfind(kRefuse, 0) == 0) throw PasswordError(answer.text.substr(kRefuse.size()));
    throw Error(ExitCode::data, "persist: unexpected answer to the sudo password request");
}

bool answer_password_request(int sock, const std::string& frame, PasswordSource* source) {
    if (frame.rfind(kAsk, 0) != 0) return false;
    WipedFrame reply;
    try {
        if (!source) throw PasswordError("sudo asked for a password and there is no password source");
        auto pw = source->get(frame.substr(kAsk.size()));
        reply.text = std::string(kGive) + pw->expose();
    } catch (const Error& e) {
        reply.text = std::string(kRefuse) + e.what();
    }
    wire::send_frame(sock, reply.text, {});
    return true;
}

}  // namespace tn::exec
