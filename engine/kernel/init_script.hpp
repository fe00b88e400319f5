#pragma once
#include <string_view>

namespace banger::kernel {
// The initramfs /init (busybox sh). Its contract is in docs/kernels.md.
std::string_view initramfs_init();
}
