// TLS settings for endpoints and clients (Asio SSL over OpenSSL). Only file paths here, so
// including this header does not pull OpenSSL into user code.
#pragma once

#include <string>

namespace cmdwire {

/// Turns an endpoint's listeners into TLS listeners.
struct tls_server_config {
  std::string cert_file;       ///< PEM certificate chain
  std::string key_file;        ///< PEM private key
  std::string client_ca_file;  ///< non-empty: clients must present a certificate it signed
};

/// Makes a client speak TLS and verify the server.
struct tls_client_config {
  bool enabled = false;
  std::string ca_file;    ///< PEM CAs to trust; empty: the system's default trust store
  std::string cert_file;  ///< client certificate, for servers that require mutual TLS
  std::string key_file;
};

}  // namespace cmdwire
