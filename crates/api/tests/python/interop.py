"""Python's xmlrpc.client as the judge of crates/api's XML-RPC codec.

Modes (run by crates/api/tests/python.rs):
  calls      print JSON cases: a methodCall body as xmlrpc.client.dumps
             writes it (allow_none=True) and the arguments our reader must
             find in it, mapped as crates/api documents (bytes -> base64
             text, DateTime -> its text).
  responses  read JSON {"values": [...], "bodies": [...]} from stdin: values
             are JSON values, bodies our methodResponse bodies for them (or
             for faults). Print, per body, what xmlrpc.client.loads reads,
             and per value the body Python itself writes.
"""
import base64
import json
import sys
import xmlrpc.client


def tomato_call(method, *args, **kwargs):
    # ToMaTo's client (lib/rpc/xmlrpc.py ServerProxy) always sends (args, kwargs).
    return xmlrpc.client.dumps((list(args), kwargs), method, allow_none=True)


def plain_call(method, *args):
    return xmlrpc.client.dumps(args, method, allow_none=True)


def calls():
    binary = xmlrpc.client.Binary(b"\x00\x01binary\xff" * 10)
    when = xmlrpc.client.DateTime("20240102T03:04:05")
    cases = [
        (tomato_call("topology_info", 7, full=True),
         {"method": "topology_info", "args": [7], "kwargs": {"full": True}}),
        (tomato_call("topology_create"), {"method": "topology_create", "args": [], "kwargs": {}}),
        (tomato_call("element_create", "5f0c", "container", None, {"name": "pc <1> & \"2\"", "_pos": {"x": 1.5, "y": -2.25}}),
         {"method": "element_create", "args": ["5f0c", "container", None, {"name": "pc <1> & \"2\"", "_pos": {"x": 1.5, "y": -2.25}}], "kwargs": {}}),
        (tomato_call("element_modify", id=12, attrs={"ram": 512, "flags": [True, False], "unicode": "\u00e4\u263a\U0001f600"}),
         {"method": "element_modify", "args": [], "kwargs": {"id": 12, "attrs": {"ram": 512, "flags": [True, False], "unicode": "\u00e4\u263a\U0001f600"}}}),
        (plain_call("server_info"), {"method": "server_info", "args": [], "kwargs": {}}),
        (plain_call("topology_action", 3, "start"), {"method": "topology_action", "args": [3, "start"], "kwargs": {}}),
        (plain_call("weird", binary, when, -2147483648, 2147483647, 1e-300, "\t line\nbreaks \t"),
         {"method": "weird",
          "args": [base64.b64encode(binary.data).decode(), "20240102T03:04:05", -2147483648, 2147483647, 1e-300, "\t line\nbreaks \t"],
          "kwargs": {}}),
        (plain_call("nested", [[[]], {}, [{"a": [None]}]]),
         {"method": "nested", "args": [[[[]], {}, [{"a": [None]}]]], "kwargs": {}}),
    ]
    print(json.dumps([{"xml": xml, "expect": expect} for xml, expect in cases]))


def to_json(value):
    if isinstance(value, xmlrpc.client.Binary):
        return base64.b64encode(value.data).decode()
    if isinstance(value, xmlrpc.client.DateTime):
        return value.value
    if isinstance(value, dict):
        return {k: to_json(v) for k, v in value.items()}
    if isinstance(value, list):
        return [to_json(v) for v in value]
    return value


def sort_keys(value):
    if isinstance(value, dict):
        return {k: sort_keys(value[k]) for k in sorted(value)}
    if isinstance(value, list):
        return [sort_keys(v) for v in value]
    return value


def responses():
    request = json.load(sys.stdin)
    read = []
    for body in request["bodies"]:
        try:
            (value,), _ = xmlrpc.client.loads(body)
            read.append({"value": to_json(value)})
        except xmlrpc.client.Fault as fault:
            read.append({"fault": {"faultCode": fault.faultCode, "faultString": fault.faultString}})
    written = [xmlrpc.client.dumps((sort_keys(v),), methodresponse=True, allow_none=True) for v in request["values"]]
    print(json.dumps({"read": read, "written": written}))


if __name__ == "__main__":
    {"calls": calls, "responses": responses}[sys.argv[1]]()
