// facet-make-dataset: writes a synthetic UTKFace-format data set (core/data/synthetic.h), for the demo and for
// trying facet without real faces. OpenCV only: no LibTorch, no server.
#include "core/data/synthetic.h"
#include "core/util/flag_set.h"

#include <cstdio>
#include <exception>
#include <stdexcept>

int main(int argc, char** argv) {
  facet::FlagSet f(
      "usage: facet-make-dataset --out DIR [--count N] [--size N] [--seed N]\n"
      "\n"
      "Writes face-like synthetic images named as UTKFace names its faces ([age]_[gender]_[race]_[time].jpg.chip.jpg),\n"
      "whose pixels depend on the labels, so that a model can learn from them. Train on them with\n"
      "`facetctl train --data DIR` once DIR is inside the server's data root.");
  const facet::SyntheticOptions defaults;
  f.String("out", "", "folder to write (created if missing; required)");
  f.Int("count", defaults.count, "images");
  f.Int("size", defaults.image_size, "pixels per side");
  f.Int("seed", static_cast<long>(defaults.seed), "seed");
  f.Bool("synthetic", true, "accepted for the command line of earlier releases (`facetctl make-dataset --synthetic`)");
  try {
    f.Parse(argc, argv);
    if (f.help_requested()) {
      std::printf("%s", f.Help().c_str());
      return 0;
    }
    if (f.GetString("out").empty()) throw std::invalid_argument("--out DIR is required");
    if (f.GetInt("count") < 1 || f.GetInt("size") < 16) throw std::invalid_argument("--count must be >= 1 and --size >= 16");
    facet::SyntheticOptions options;
    options.count = static_cast<int>(f.GetInt("count"));
    options.image_size = static_cast<int>(f.GetInt("size"));
    options.seed = static_cast<uint64_t>(f.GetInt("seed"));
    const int n = facet::WriteSyntheticDataset(f.GetString("out"), options);
    std::printf("wrote %d synthetic UTKFace-format images to %s\n", n, f.GetString("out").c_str());
    return 0;
  } catch (const std::invalid_argument& e) {
    std::fprintf(stderr, "facet-make-dataset: %s\n%s", e.what(), f.Help().c_str());
    return 2;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "facet-make-dataset: %s\n", e.what());
    return 1;
  }
}
