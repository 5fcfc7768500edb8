#include "core/model/arch.h"

#include <stdexcept>

namespace facet {

Arch ParseArch(const std::string& name) {
  if (name == "resnet18") return Arch::kResNet18;
  if (name == "resnet34") return Arch::kResNet34;
  if (name == "resnet50") return Arch::kResNet50;
  throw std::invalid_argument("unknown architecture '" + name + "' (expected resnet18, resnet34 or resnet50)");
}

std::string ArchName(Arch arch) {
  switch (arch) {
    case Arch::kResNet18: return "resnet18";
    case Arch::kResNet34: return "resnet34";
    case Arch::kResNet50: return "resnet50";
  }
  return "unknown";
}

}  // namespace facet
