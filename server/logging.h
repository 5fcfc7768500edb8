// spdlog set-up for the server: level and plain or JSON lines.
// Set up once at start-up, before other threads; throws std::invalid_argument for an unknown level or format.
#pragma once

#include <string>

namespace facet::server {

// level: trace | debug | info | warn | error | critical | off. Throws std::invalid_argument on another name.
void ConfigureLogging(const std::string& level, bool json);

}  // namespace facet::server
