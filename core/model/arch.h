// The encoder architectures by name. Plain C++, no LibTorch: configurations name them without building one.
#pragma once

#include <string>

namespace facet {

enum class Arch { kResNet18, kResNet34, kResNet50 };

Arch ParseArch(const std::string& name);  // "resnet18" | "resnet34" | "resnet50"; std::invalid_argument otherwise
std::string ArchName(Arch arch);

}  // namespace facet
