"""Google's own proto3 JSON parser (python3-protobuf's json_format) as an independent check.

Usage: proto3_json.py DESCRIPTOR_SET MESSAGE_NAME < json
Parses the JSON strictly (unknown fields, wrong shapes and unresolvable Any types are errors) into
MESSAGE_NAME, then prints it back as canonical proto3 JSON. Exit 1 with the parser's message on
stderr when it rejects the input.
"""
import json
import sys

from google.protobuf import descriptor_pb2, descriptor_pool, json_format, message_factory


def main() -> int:
    with open(sys.argv[1], "rb") as f:
        fds = descriptor_pb2.FileDescriptorSet.FromString(f.read())
    pool = descriptor_pool.DescriptorPool()
    for file in fds.file:
        pool.AddSerializedFile(file.SerializeToString())
    desc = pool.FindMessageTypeByName(sys.argv[2])
    factory = message_factory.MessageFactory(pool)
    cls = factory.GetMessageClass(desc) if hasattr(factory, "GetMessageClass") else factory.GetPrototype(desc)
    msg = cls()
    try:
        json_format.Parse(sys.stdin.read(), msg, ignore_unknown_fields=False, descriptor_pool=pool)
    except json_format.ParseError as e:
        sys.stderr.write(f"rejected: {e}\n")
        return 1
    sys.stdout.write(json.dumps(json_format.MessageToDict(msg, descriptor_pool=pool)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
