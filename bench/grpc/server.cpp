// cmdwire-grpc-server: the gRPC peer of cmdwire-server's typed PROTO command, for `make bench`.
// Serves cmdwire.demo.pb.Demo/Summarize (proto/demo.proto) with the callback API and answers with
// demo::summarize, the function cmdwire-server's PROTO handler calls, so both servers do the same
// work on the same messages. Runs until SIGINT/SIGTERM.
// Usage: cmdwire-grpc-server [--listen HOST:PORT]
#include <fmt/format.h>
#include <grpcpp/grpcpp.h>
#include <pthread.h>
#include <CLI/CLI.hpp>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <memory>
#include <string>

#include "demo/demo_commands.hpp"
#include "proto/demo.grpc.pb.h"

namespace {

namespace pb = cmdwire::demo::pb;

/// Summarize only; Deepest stays UNIMPLEMENTED (the base class answers it), as nothing
/// benchmarks it.
class summarize_service final : public pb::Demo::CallbackService {
  grpc::ServerUnaryReactor* Summarize(grpc::CallbackServerContext* context,
                                      const pb::Complex* request, pb::Summary* reply) override {
    // Answered inline on the gRPC thread that delivered the request: the work is a few hundred
    // nanoseconds, far less than a hop to another thread would cost (cmdwire's PROTO handler is
    // run inline too).
    *reply = cmdwire::demo::summarize(*request);
    grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
    reactor->Finish(grpc::Status::OK);
    return reactor;
  }
};

// How long in-flight calls get to finish once a stop signal arrives.
constexpr auto shutdown_grace = std::chrono::seconds(2);

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{
      "cmdwire-grpc-server: gRPC (callback API) server of cmdwire.demo.pb.Demo/Summarize, the "
      "gRPC twin of cmdwire-server's PROTO command, for benchmarks.\n"
      "gRPC sizes its own poller and callback threads; pin the process (taskset) to give it a "
      "given number of cores.\n"
      "Example:\n"
      "  taskset -c 0 cmdwire-grpc-server --listen 127.0.0.1:0"};
  std::string listen = "127.0.0.1:0";
  app.add_option("--listen", listen, "HOST:PORT to listen on; port 0 picks a free one")
      ->capture_default_str();
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? 0 : 2;  // usage errors exit 2, as in every cmdwire binary
  }

  // Block the stop signals before gRPC starts its threads, so they inherit the mask and only
  // sigwait below sees SIGINT/SIGTERM.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGINT);
  sigaddset(&stop_signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);

  summarize_service service;
  int port = 0;
  grpc::ServerBuilder builder;
  builder.AddListeningPort(listen, grpc::InsecureServerCredentials(), &port);
  builder.RegisterService(&service);
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  if (!server || port == 0) {
    fmt::print(stderr, "cmdwire-grpc-server: cannot listen on {}\n", listen);
    return 1;
  }
  // The same line cmdwire-server prints: bench/run.sh reads the port from it.
  const std::string host = listen.substr(0, listen.rfind(':'));
  fmt::print("cmdwire-grpc-server: listening on {}:{}\n", host, port);
  std::fflush(stdout);

  int signal = 0;
  sigwait(&stop_signals, &signal);
  server->Shutdown(std::chrono::system_clock::now() + shutdown_grace);
  server->Wait();
  return 0;
}
