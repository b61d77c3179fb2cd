// The completion token for awaited I/O whose failure is an expected outcome: `co_await
// op(nothrow)` yields (error_code, results...) instead of throwing.
#pragma once

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/use_awaitable.hpp>

namespace cmdwire::detail {

inline constexpr auto nothrow = boost::asio::as_tuple(boost::asio::use_awaitable);

}  // namespace cmdwire::detail
