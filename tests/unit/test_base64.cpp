// tn::base64_encode/decode (base/base64.hpp): RFC 4648's test vectors, and the strict decoder's refusals
// that serve --stdio and tn-route's Basic auth share.
#include <catch2/catch.hpp>

#include <string>

#include "base/base64.hpp"

using namespace tn;

TEST_CASE("base64: RFC 4648 section 10 vectors both ways") {
    const std::pair<const char*, const char*> vectors[] = {{"", ""},
                                                           {"f", "Zg=="},
                                                           {"fo", "Zm8="},
                                                           {"foo", "Zm9v"},
                                                           {"foob", "Zm9vYg=="},
                                                           {"fooba", "Zm9vYmE="},
                                                           {"foobar", "Zm9vYmFy"}};
    for (auto [plain, text] : vectors) {
        CHECK(base64_encode(plain) == text);
        CHECK(base64_decode(text) == std::string(plain));
    }
    std::string all;
    for (int c = 0; c < 256; ++c) all.push_back(static_cast<char>(c));
    CHECK(base64_decode(base64_encode(all)) == all);
    CHECK(base64_decode("AP9i") == std::string("\x00\xff"
                                               "b",
                                               3));
}

TEST_CASE("base64: only canonical padded text decodes") {
    for (auto* good : {"Zg==", "Zm8=", "goo=", "Zm9vYg=="}) CHECK(base64_encode(base64_decode(good).value()) == good);
    for (auto* bad : {"YQ=", "Y===", "=YWI", " YWI", "YWI ", "YW I", "YQ=a", "YW\nI", "YQ", "Zm9v\n", "Zm9-", "Zm9_",
                      // left-over bits not zero: each decodes to the bytes of the canonical text beside it
                      "Zh==", "Zm9=", "gop=", "Zm9vYr=="})
        CHECK_FALSE(base64_decode(bad).has_value());
}
