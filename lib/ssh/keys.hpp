// Key files: generation with the right modes, and the OpenSSH one-line public key form.
#pragma once

#include <filesystem>
#include <string>

namespace tn::ssh {

enum class KeyType { ed25519, ecdsa, rsa };
KeyType parse_key_type(const std::string& s);  // throws ParseError naming the valid types
const char* key_type_name(KeyType t);          // "ed25519"
std::string default_key_file(KeyType t);       // "id_ed25519"

// Writes PATH (0600) and PATH.pub (0644). Refuses to overwrite an existing file.
void generate_key(KeyType type, const std::filesystem::path& path, const std::string& comment);

// "ssh-ed25519 AAAA... comment": read from PATH.pub, or derived from the private key when absent.
std::string public_key_line(const std::filesystem::path& private_key);

// The "type base64" part of a public key line: the identity of a key, comments aside.
std::string key_identity(const std::string& line);

}  // namespace tn::ssh
