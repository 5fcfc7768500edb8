// Scalar fields of an API message named by their dotted path ("frozen.lr_max", "augment.max_zoom"), through
// protobuf reflection: how the CLI and the server walk the one table of training settings
// (core/train/training_fields.h) instead of naming each field by hand. Thread-safe on distinct messages.
#pragma once

#include <google/protobuf/message.h>

#include <string>

namespace facet::proto {

// Whether the field at `path` is set (fields of an unset sub-message are not). Numbers and bools travel as double.
// All three throw std::logic_error naming the path when it names no singular numeric or bool field with presence
// (the table out of step with the .proto, which the tests catch). SetNumberAt throws std::invalid_argument naming
// the path for a value an integer field cannot hold (a fraction, or out of its range).
bool HasNumberAt(const google::protobuf::Message& message, const std::string& path);
double GetNumberAt(const google::protobuf::Message& message, const std::string& path);
void SetNumberAt(google::protobuf::Message& message, const std::string& path, double value);

}  // namespace facet::proto
