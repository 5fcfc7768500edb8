#include "core/train/run_data.h"

#include "core/util/device.h"

namespace facet {

TrainingData OpenTrainingData(const TrainingConfig& config, DataShard shard) {
  const BatchShape shape{config.image_size, config.batch_size, ResolveDevice(config.device).is_cuda()};
  return OpenTrainingData(config.data, shape, config.seed, shard);
}

}  // namespace facet
