#pragma once
// Names for temporaries: a caller's stem plus random hex digits, so two
// writers (two banger processes, two threads) never pick the same name. The
// caller still creates the file O_EXCL: the name is unlikely to be taken,
// not guaranteed free.
#include <cstddef>
#include <string>
#include <string_view>

namespace banger {

// 2 * bytes lowercase hex digits from getrandom(2).
std::string random_hex(std::size_t bytes);

// `stem` followed by 12 random hex digits ("<dir>/.x.tmp-" -> "<dir>/.x.tmp-3f09a1c2b7d4").
std::string temp_name(std::string_view stem);

}  // namespace banger
