"""What the end-to-end scripts share (Python standard library only): a
ToMaTo-style XML-RPC proxy for the server in TOMATO_PORT, and a call's
outcome as ToMaTo's error code."""

import json
import os
import xmlrpc.client

port = os.environ["TOMATO_PORT"]


def proxy(user=None, password=None):
    """A proxy logged in as `user`, or anonymous."""
    login = "%s:%s@" % (user, password) if user else ""
    return xmlrpc.client.ServerProxy("http://%s127.0.0.1:%s/RPC2" % (login, port), allow_none=True)


def outcome(call):
    """(`ok` or the error's code, its message): ToMaTo's code of a fault
    999, the fault code of others, `http N` for a refused login."""
    try:
        call()
        return "ok", ""
    except xmlrpc.client.Fault as f:
        if f.faultCode != 999:
            return str(f.faultCode), f.faultString
        body = json.loads(f.faultString)
        return body["code"], body["message"]
    except xmlrpc.client.ProtocolError as e:
        return "http %d" % e.errcode, e.errmsg


def code(call):
    """`ok` or the error's code."""
    return outcome(call)[0]
