// `facet-server train-worker`: one rank of a data-parallel training job. facet-server starts these for a job with
// world_size > 1; an operator starts the ranks of other hosts by hand with the same task file (docs/deploy.md).
// RunTrainWorker owns its process (signals, exit code); it throws std::invalid_argument for a task file it cannot use.
#pragma once

namespace facet::server {

// argv[0] is "train-worker". Returns the process exit status: 0 when training ended (finished, cancelled or
// suspended), 1 on an error (also written to --error-file), 2 on bad usage.
int RunTrainWorker(int argc, char** argv);

}  // namespace facet::server
