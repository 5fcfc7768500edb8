#!/usr/bin/python3
"""A second client, in Python, as another service would write it: stubs generated from proto/ at run time.

usage: predict_client.py SERVER PROTO_DIR IMAGE_DIR COUNT
Calls Predict on COUNT real face images, the standard health service, and server reflection (list_services).
Exits non-zero with a message on any failure; prints one JSON summary line.
"""
import glob
import json
import os
import shutil
import subprocess
import sys
import tempfile

import grpc


def generate_stubs(proto_dir, out_dir):
    # Python module paths follow file paths: health.proto is compiled as health_v1.proto, so that its module does
    # not shadow grpcio's own `grpc` package (the service keeps its name, grpc.health.v1.Health).
    src = os.path.join(out_dir, "src")
    os.makedirs(os.path.join(src, "facet", "v1"))
    shutil.copy(os.path.join(proto_dir, "facet", "v1", "facet.proto"), os.path.join(src, "facet", "v1"))
    shutil.copy(os.path.join(proto_dir, "grpc", "health", "v1", "health.proto"), os.path.join(src, "health_v1.proto"))
    subprocess.run(["protoc", f"-I{src}", f"--python_out={out_dir}", f"--grpc_python_out={out_dir}",
                    "--plugin=protoc-gen-grpc_python=/usr/bin/grpc_python_plugin",
                    "facet/v1/facet.proto", "health_v1.proto"], check=True)
    for folder in ("facet", "facet/v1"):
        open(os.path.join(out_dir, folder, "__init__.py"), "a").close()
    sys.path.insert(0, out_dir)


def list_services(channel):
    # ServerReflectionRequest{list_services: ""}: field 7, length-delimited, empty. Hand-encoded so that the test
    # needs no reflection stubs; the answer names the services.
    call = channel.stream_stream("/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo",
                                 request_serializer=lambda b: b, response_deserializer=lambda b: b)
    return b"".join(call(iter([b"\x3a\x00"]), timeout=10))


def main(server, proto_dir, image_dir, count):
    with tempfile.TemporaryDirectory() as tmp:
        generate_stubs(proto_dir, tmp)
        from facet.v1 import facet_pb2, facet_pb2_grpc
        import health_v1_pb2 as health_pb2
        import health_v1_pb2_grpc as health_pb2_grpc

        channel = grpc.insecure_channel(server)
        health = health_pb2_grpc.HealthStub(channel).Check(
            health_pb2.HealthCheckRequest(service="facet.v1.InferenceService"), timeout=10)
        assert health.status == health_pb2.HealthCheckResponse.SERVING, health

        reflected = list_services(channel)
        for name in (b"facet.v1.InferenceService", b"facet.v1.TrainingService", b"grpc.health.v1.Health"):
            assert name in reflected, f"reflection does not list {name!r}"

        files = sorted(glob.glob(os.path.join(image_dir, "*.jpg")))[:count]
        assert len(files) == count, f"found {len(files)} images in {image_dir}"
        request = facet_pb2.PredictRequest(images=[open(f, "rb").read() for f in files])
        response = facet_pb2_grpc.InferenceServiceStub(channel).Predict(request, timeout=60)
        assert len(response.results) == count
        for name, result in zip(files, response.results):
            assert result.error_code == 0, (name, result.error_message)
            assert len(result.faces) == 1, name
            face = result.faces[0]
            assert 0.5 < face.age_years < 120, (name, face.age_years)
            assert face.gender in ("male", "female"), face.gender
            assert abs(sum(face.ethnicity_probabilities) - 1) < 1e-4
        print(json.dumps({"model_id": response.model_id, "images": count,
                          "first": {"file": os.path.basename(files[0]), "age": response.results[0].faces[0].age_years}}))


if __name__ == "__main__":
    if len(sys.argv) != 5:
        sys.exit(__doc__)
    main(sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]))
