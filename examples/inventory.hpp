// The one definition of the example's commands, shared by examples/server.cpp and
// examples/client.cpp: copy this pattern to integrate two processes of your own.
#pragma once

#include <cereal/types/string.hpp>
#include <cereal/types/vector.hpp>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace inventory {

struct Item {
  std::string sku;
  std::int32_t quantity = 0;

  template <class Archive>
  void serialize(Archive& ar) {
    ar(cereal::make_nvp("sku", sku), cereal::make_nvp("quantity", quantity));
  }
};

struct Stock {
  std::vector<Item> items;
  std::int64_t total = 0;

  template <class Archive>
  void serialize(Archive& ar) {
    ar(cereal::make_nvp("items", items), cereal::make_nvp("total", total));
  }
};

/// Adds an item to the stock and answers with the whole stock.
struct Add {
  static constexpr std::string_view name = "ADD";
  using request = Item;
  using response = Stock;
};

}  // namespace inventory
