// --sudo through a --persist master: the master runs sudo's prompt gate (sudo.hpp) on its session,
// and asks the client for the password on the request's socket when sudo shows the prompt, so the
// password comes from the client's own source (its --password-* or askpass), read only when needed.
//   master -> client: "password PROMPT"    client -> master: "pw PASSWORD" | "nopw WHY"
// The socket is the master's private one (0600, in the user's state dir); the password is never
// written anywhere else, and both ends wipe their copies of the frame.
#pragma once

#include <memory>
#include <string>

#include "base/secret.hpp"
#include "password.hpp"

namespace tn::exec {

// The master's side: sends `prompt` to the client on `conn` and waits for its answer. Throws
// PasswordError (77) when the client has no password to give.
std::shared_ptr<const Secret> ask_client_for_password(int conn, const std::string& prompt);

// The client's side: true when `frame` was the master's password request (then answered on
// `sock` from `source`, or refused when there is none or it fails); false for any other frame.
bool answer_password_request(int sock, const std::string& frame, PasswordSource* source);

}  // namespace tn::exec
