#pragma once
// Appends every API call the fake answered, as one JSON object per line,
// to the file named by FAKE_FC_RECORD:
//   {"method":"PUT","path":"/drives/rootfs","body":{...},"status":204}
// body is the parsed JSON (the raw text if it is not JSON, null if empty);
// status is null for a request the fake died on (FAKE_FC_DIE_ON), and
// "injected" is true for answers forced by FAKE_FC_FAIL.
#include <nlohmann/json.hpp>

#include <string>

namespace fakefc {

void record(const std::string& method, const std::string& path, const std::string& body, const nlohmann::json& status,
            bool injected = false);

}  // namespace fakefc
