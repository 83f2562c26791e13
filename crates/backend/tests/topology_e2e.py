"""A ToMaTo-style client of the backend, Python standard library only:
two containers with an interface each, a link, start, ping, a delay
change, info, stop, destroy, remove. Prints what it saw, one fact a line."""

import json
import os
import re
import xmlrpc.client

url = "http://%s:%s@127.0.0.1:%s/RPC2" % (
    os.environ["TOMATO_USER"], os.environ["TOMATO_PASSWORD"], os.environ["TOMATO_PORT"])
api = xmlrpc.client.ServerProxy(url, allow_none=True)

print("account", api.account_info()["name"])
top = api.topology_create()
tid = top["id"]
api.topology_modify(tid, {"name": "ping test", "_notes": "made by the test"})
nodes = []
for i, addr in enumerate(["10.0.0.1/24", "10.0.0.2/24"]):
    # `name` is the backend's, as in ToMaTo's editor; the host never sees it.
    ct = api.element_create(tid, "container", None, {"name": "pc%d" % (i + 1)})
    ifc = api.element_create(tid, "container_interface", ct["id"], {"ip4address": addr})
    nodes.append((ct["id"], ifc["id"]))
# A creation the host refuses leaves nothing behind.
try:
    api.element_create(tid, "container", None, {"ram": "lots"})
    print("refused create: accepted")
except xmlrpc.client.Fault as f:
    print("refused create:", json.loads(f.faultString)["code"], len(api.topology_info(tid)["elements"]))
link = api.connection_create(nodes[0][1], nodes[1][1], {"type": "bridge"})
print("link", link["type"], link["state"])

steps = api.topology_action(tid, "start")["steps"]
print("start", " ".join("%s/%s" % (s["type"], s["action"]) for s in steps))


def rtts():
    r = api.element_action(nodes[0][0], "execute", {"cmd": "ping -c 3 -i 0.2 10.0.0.2"})
    return [float(t) for t in re.findall(r"time=([0-9.]+)", r["output"])]


before = rtts()
# The fastest of three: under load a single ping (the first waits for ARP)
# can take longer than the delay set later.
print("rtt before", len(before), min(before))
info = api.connection_modify(link["id"], {"delay_to": 20})
print("delay_to", info["attrs"]["delay_to"])
after = rtts()
print("rtt after", len(after), min(after))

info = api.element_info(nodes[1][0])
print("element", info["type"], info["state"], "children", len(info["children"]), "name", info["attrs"]["name"])
info = api.element_info(nodes[1][1], True)
print("interface", info["state"], info["attrs"]["ip4address"])
print("topology", api.topology_info(tid)["name"], api.topology_info(tid)["attrs"]["_notes"])

steps = api.topology_action(tid, "stop")["steps"]
print("stop", " ".join("%s/%s" % (s["type"], s["action"]) for s in steps))
try:
    api.topology_remove(tid)
    print("remove while prepared: accepted")
except xmlrpc.client.Fault as f:
    print("remove while prepared:", f.faultCode, json.loads(f.faultString)["code"])
api.topology_action(tid, "destroy")
api.topology_remove(tid)
print("topologies left", len(api.topology_list()))
