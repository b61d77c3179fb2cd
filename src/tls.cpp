// OpenSSL contexts for TLS listeners and clients.
#include "tls.hpp"

#include <fmt/format.h>

namespace cmdwire::detail {

namespace ssl = boost::asio::ssl;

namespace {
result<std::unique_ptr<ssl::context>> fail(std::string_view what, const std::string& file,
                                           const boost::system::error_code& ec) {
  return error{make_error_code(errc::bad_request),
               fmt::format("cannot load TLS {} '{}': {}", what, file, ec.message())};
}

// Old protocol versions have known attacks; nothing we talk to needs them.
constexpr auto secure_options = ssl::context::default_workarounds | ssl::context::no_sslv2 |
                                ssl::context::no_sslv3 | ssl::context::no_tlsv1 |
                                ssl::context::no_tlsv1_1 | ssl::context::single_dh_use;
}  // namespace

result<std::unique_ptr<ssl::context>> make_server_tls(const tls_server_config& config) {
  auto ctx = std::make_unique<ssl::context>(ssl::context::tls_server);
  boost::system::error_code ec;
  ctx->set_options(secure_options, ec);
  if (ctx->use_certificate_chain_file(config.cert_file, ec); ec) {
    return fail("certificate", config.cert_file, ec);
  }
  if (ctx->use_private_key_file(config.key_file, ssl::context::pem, ec); ec) {
    return fail("private key", config.key_file, ec);
  }
  if (!config.client_ca_file.empty()) {
    if (ctx->load_verify_file(config.client_ca_file, ec); ec) {
      return fail("client CA", config.client_ca_file, ec);
    }
    ctx->set_verify_mode(ssl::verify_peer | ssl::verify_fail_if_no_peer_cert);
  }
  return ctx;
}

result<std::unique_ptr<ssl::context>> make_client_tls(const tls_client_config& config) {
  auto ctx = std::make_unique<ssl::context>(ssl::context::tls_client);
  boost::system::error_code ec;
  ctx->set_options(secure_options, ec);
  if (config.ca_file.empty()) {
    ctx->set_default_verify_paths(ec);
  } else if (ctx->load_verify_file(config.ca_file, ec); ec) {
    return fail("CA", config.ca_file, ec);
  }
  ctx->set_verify_mode(ssl::verify_peer);
  if (!config.cert_file.empty()) {
    if (ctx->use_certificate_chain_file(config.cert_file, ec); ec) {
      return fail("certificate", config.cert_file, ec);
    }
    if (ctx->use_private_key_file(config.key_file, ssl::context::pem, ec); ec) {
      return fail("private key", config.key_file, ec);
    }
  }
  return ctx;
}

}  // namespace cmdwire::detail
