// Building OpenSSL contexts from tls_*_config, shared by the endpoint and the client.
#pragma once

#include <boost/asio/ssl/context.hpp>
#include <memory>

#include "cmdwire/error.hpp"
#include "cmdwire/tls.hpp"

namespace cmdwire::detail {

/// A server context: TLS 1.2+, certificate and key loaded, client verification if asked.
[[nodiscard]] result<std::unique_ptr<boost::asio::ssl::context>> make_server_tls(
    const tls_server_config& config);

/// A client context: TLS 1.2+, peer verification on, the given or default trust store.
[[nodiscard]] result<std::unique_ptr<boost::asio::ssl::context>> make_client_tls(
    const tls_client_config& config);

}  // namespace cmdwire::detail
