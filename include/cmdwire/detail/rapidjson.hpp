// The rapidjson that cereal's JSON archives use, for reading and writing JSON elsewhere: upstream
// cereal bundles it in a namespace of its own, Debian's cereal uses the system copy.
#pragma once

// cereal configures rapidjson through macros (assertions that throw, NaN/Inf flags); including
// it first gives every user the same rapidjson, as the ODR requires.
#include <cereal/archives/json.hpp>

#if __has_include(<cereal/external/rapidjson/document.h>)
#include <cereal/external/rapidjson/document.h>
#include <cereal/external/rapidjson/error/en.h>
#include <cereal/external/rapidjson/memorystream.h>
#include <cereal/external/rapidjson/prettywriter.h>
#include <cereal/external/rapidjson/reader.h>
#include <cereal/external/rapidjson/stringbuffer.h>
#include <cereal/external/rapidjson/writer.h>
namespace cmdwire::detail {
namespace rj = CEREAL_RAPIDJSON_NAMESPACE;
}
#else
#include <rapidjson/document.h>
#include <rapidjson/error/en.h>
#include <rapidjson/memorystream.h>
#include <rapidjson/prettywriter.h>
#include <rapidjson/reader.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>
namespace cmdwire::detail {
namespace rj = RAPIDJSON_NAMESPACE;
}
#endif
