"""Validates OCSF 1.5.0 events (NDJSON on stdin) for tests/ocsf.rs.

The validator is pydantic-ocsf (pinned in requirements-ocsf.txt): its `ocsf.v1_5_0.events`
models check required attributes, types, enums, caption/id consistency and class_uid /
category_uid / type_uid. Two things it does not do, added here:

- It types `json_t` as an object where the schema allows any JSON value; that one type is
  widened (below).
- Its class enums of `activity_id` lack 0 (Unknown), which the compiled schema gives every
  class from Base Event: it is added back.
- Its bundled schema has no extensions and no profile attributes. The Windows extension's
  registry classes and objects and the host profile (`device`, `actor`) come verbatim from the
  OCSF schema repository (ocsf-1.5.0-extras.json) and are merged into the schema before any
  model is built, so registry events are validated by the same machinery.
- Its models accept any extra attribute (`extra="allow"`) and ignore `at_least_one`
  constraints. `strict_check` walks each event against the schema: every attribute, at the top
  and in every nested object, must be defined by its class or object (a profile's attributes
  only when `metadata.profiles` lists the profile), required attributes must be present (the
  models miss some, e.g. Process Activity's `actor`), and `at_least_one`/`just_one` must hold,
  with constraints inherited along `extends` as the schema compiler does (`product`, `device`,
  `group`, `technique` … get `at_least_one` name/uid from `_entity`; an object that declares its
  own, even empty, overrides it).
- Its models type every integer as a Python int (unbounded) and `ip_t` as any string. The walk
  also checks values by dictionary type: `port_t` 0–65535, `integer_t`/`long_t`/`timestamp_t`
  signed 64-bit (booleans are not integers), `ip_t` an IPv4/IPv6 address (optionally with a
  `%zone`).

Prints one JSON summary line: {"events", "classes": {class_uid: count}, "errors": [...]}.
Exit status 0 when every event is valid, 1 otherwise, 2 when the validator cannot run.
"""

import ipaddress
import json
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
VERSION = "1.5.0"
MAX_ERRORS = 50

try:
    import ocsf._utils
    import ocsf.v1_5_0 as ocsf_v
except ImportError as e:  # the Rust test turns this into a how-to message
    print(json.dumps({"setup_error": f"cannot import ocsf.v1_5_0 (pydantic-ocsf): {e}"}))
    sys.exit(2)

# The one correction to the package: it types `json_t` as a JSON object, while the schema's
# dictionary defines json_t as "Embedded JSON value. A value can be a string, or a number, or
# true or false or null, or an object or an array" (e.g. a registry value's `data`).
_to_python = ocsf._utils.ocsf_type_to_python


def _json_t_is_any(ocsf_type, is_array=False, object_type=None, enum_name=None):
    if ocsf_type == "json_t" and not enum_name:
        return "list[Any]" if is_array else "Any"
    return _to_python(ocsf_type, is_array, object_type, enum_name)


ocsf._utils.ocsf_type_to_python = _json_t_is_any


def merge_extras(schema):
    """Adds the Windows registry classes/objects and the host profile to the package schema."""
    with open(os.path.join(HERE, "ocsf-1.5.0-extras.json"), encoding="utf-8") as f:
        extras = json.load(f)
    ext_uid = extras["extension"]["uid"]
    for name, spec in extras["events"].items():
        spec = dict(spec)
        # OCSF's class_uid of an extension class is ext_uid * 100000 + category_uid * 1000 +
        # uid (Registry Key Activity: 2 * 100000 + 1 * 1000 + 1 = 201001). pydantic-ocsf
        # computes category_uid * 1000 + uid, so the extension part goes into uid.
        spec["uid"] = ext_uid * 100000 + spec["uid"]
        schema["events"][name] = spec
    for name, spec in extras["objects"].items():
        schema["objects"][name] = spec
    for name, spec in extras["dictionary"].items():
        schema["dictionary"]["attributes"].setdefault(name, spec)
    return extras["profiles"]


def add_unknown_activity(schema):
    """pydantic-ocsf's class enums of `activity_id` lack 0 (Unknown), which every class has
    from Base Event in the compiled schema (`ocsf-schema-compiler` merges the base class's enum
    into each class): put it back, so an event whose activity is unknown is not refused."""
    for spec in schema["events"].values():
        enum = spec.get("attributes", {}).get("activity_id", {}).get("enum")
        if isinstance(enum, dict) and "0" not in enum:
            enum["0"] = {"caption": "Unknown"}


SCHEMA = ocsf_v.schema
PROFILES = merge_extras(SCHEMA)
add_unknown_activity(SCHEMA)
EVENTS = SCHEMA["events"]
OBJECTS = SCHEMA["objects"]
DICTIONARY = SCHEMA["dictionary"]["attributes"]
CATEGORY_UIDS = {k: v["uid"] for k, v in SCHEMA["categories_meta"]["attributes"].items()}


def chain(spec, coll):
    """The attributes of a class or object with those of every class it extends."""
    specs = []
    while spec is not None:
        specs.append(spec)
        parent = spec.get("extends")
        spec = coll.get(parent) if parent else None
    attrs, includes = {}, []
    for s in reversed(specs):
        for k, v in s.get("attributes", {}).items():
            if k == "$include":
                includes.extend(v)
                continue
            merged = dict(attrs.get(k, {}))
            merged.update(v)
            attrs[k] = merged
    return attrs, includes


def class_uid_of(name, spec):
    """class_uid of an event class (0 for Base Event, None for abstract ones)."""
    if name == "base_event":
        return 0
    if "uid" not in spec:
        return None
    s = spec
    while s is not None and not s.get("category"):
        s = EVENTS.get(s.get("extends"))
    cat = CATEGORY_UIDS.get(s.get("category")) if s else None
    return None if cat is None else cat * 1000 + spec["uid"]


def pascal(name):
    return "".join(p.capitalize() for p in name.split("_"))


CLASSES = {}
for name, spec in EVENTS.items():
    uid = class_uid_of(name, spec)
    if uid is not None:
        CLASSES[uid] = name


def model_for(class_name):
    return getattr(ocsf_v.events, pascal(class_name))


def load_all_objects():
    # Forward references between models resolve only once every model exists.
    for name in OBJECTS:
        if name.startswith("_"):
            continue
        try:
            getattr(ocsf_v.objects, pascal(name))
        except AttributeError:
            pass
    for name in CLASSES.values():
        model_for(name)
    ocsf_v.rebuild_all()


def attr_type(spec, name):
    t = spec.get("type") or DICTIONARY.get(name, {}).get("type")
    is_array = spec.get("is_array", DICTIONARY.get(name, {}).get("is_array", False))
    return t, is_array


def constraints_of(spec, coll):
    """The constraints of a class or object, inherited along `extends`."""
    while spec is not None:
        if "constraints" in spec:
            return spec["constraints"] or None
        parent = spec.get("extends")
        spec = coll.get(parent) if parent else None
    return None


TYPES = SCHEMA["dictionary"].get("types", {}).get("attributes", {})
INT64 = (-(2**63), 2**63 - 1)


def base_type(t):
    """The primitive type of a dictionary type and its range, if any (`port_t` → integer_t)."""
    rng = None
    while t in TYPES and TYPES[t].get("type") and TYPES[t]["type"] != t:
        rng = rng or TYPES[t].get("range")
        t = TYPES[t]["type"]
    return t, rng


def is_ip(v):
    try:
        ipaddress.ip_address(v.split("%", 1)[0])
        return True
    except ValueError:
        return False


def check_value(t, v, where, errors):
    """Type and range of one scalar value of dictionary type `t`."""
    if t in OBJECTS:
        return
    prim, rng = base_type(t)
    if prim in ("integer_t", "long_t"):
        if isinstance(v, bool) or not isinstance(v, int):
            errors.append(f"{where}: {v!r} is not an integer ({t})")
            return
        lo, hi = rng or INT64
        if not lo <= v <= hi:
            errors.append(f"{where}: {v} outside the range of {t} [{lo}, {hi}]")
    if t == "ip_t" and not (isinstance(v, str) and is_ip(v)):
        errors.append(f"{where}: {v!r} is not an IP address (ip_t)")


def strict_check(value, attrs, includes, where, profiles, errors, constraints=None):
    """Every key of `value` defined by `attrs` (or an included profile listed in
    metadata.profiles); nested objects checked the same way; at_least_one constraints hold."""
    allowed = dict(attrs)
    for inc in includes:
        pname = os.path.splitext(os.path.basename(inc))[0]
        if inc.startswith("profiles/") and pname in PROFILES and pname in profiles:
            for k, v in PROFILES[pname]["attributes"].items():
                allowed.setdefault(k, v)
    for key, v in value.items():
        if key not in allowed:
            errors.append(f"{where}{key}: attribute not defined by the schema here")
            continue
        t, is_array = attr_type(allowed[key], key)
        if t not in OBJECTS and v is not None:
            for item in (v if is_array and isinstance(v, list) else [v]):
                check_value(t, item, f"{where}{key}", errors)
        if t in OBJECTS and t != "object":
            items = v if is_array and isinstance(v, list) else [v]
            for i, item in enumerate(items):
                if not isinstance(item, dict):
                    errors.append(f"{where}{key}: expected an object of type {t}")
                    continue
                o_attrs, o_inc = chain(OBJECTS[t], OBJECTS)
                sub = f"{where}{key}[{i}]." if is_array else f"{where}{key}."
                strict_check(item, o_attrs, o_inc, sub, profiles, errors,
                             constraints_of(OBJECTS[t], OBJECTS))
    for k, spec in attrs.items():
        if spec.get("requirement") == "required" and k not in value:
            errors.append(f"{where}{k}: required attribute missing")
    one_of = (constraints or {}).get("at_least_one")
    if one_of and not any(value.get(k) is not None for k in one_of):
        errors.append(f"{where or '(event) '}needs at least one of {one_of}")
    just_one = (constraints or {}).get("just_one")
    if just_one and sum(value.get(k) is not None for k in just_one) != 1:
        errors.append(f"{where or '(event) '}needs exactly one of {just_one}")


def check(event):
    errors = []
    if not isinstance(event, dict):
        return ["not a JSON object"]
    cls = event.get("class_uid")
    name = CLASSES.get(cls)
    if name is None:
        return [f"unknown class_uid {cls!r}"]
    meta = event.get("metadata") or {}
    if meta.get("version") != VERSION:
        errors.append(f"metadata.version is {meta.get('version')!r}, not {VERSION}")
    try:
        # The models' before-validators fill in and rewrite attributes: give them a copy.
        model_for(name).model_validate(json.loads(json.dumps(event)))
    except Exception as e:  # pydantic.ValidationError and the validators' ValueErrors
        errors.append(f"pydantic-ocsf: {e}")
    attrs, includes = chain(EVENTS[name], EVENTS)
    strict_check(event, attrs, includes, "", set(meta.get("profiles") or []), errors,
                 constraints_of(EVENTS[name], EVENTS))
    return errors


def main():
    load_all_objects()
    summary = {"events": 0, "classes": {}, "errors": []}
    for n, line in enumerate(sys.stdin, 1):
        line = line.strip()
        if not line:
            continue
        summary["events"] += 1
        try:
            event = json.loads(line)
        except ValueError as e:
            problems = [f"not JSON: {e}"]
            event = {}
        else:
            problems = check(event)
        cls = str(event.get("class_uid")) if isinstance(event, dict) else "?"
        summary["classes"][cls] = summary["classes"].get(cls, 0) + 1
        for p in problems:
            key = f"{cls}: {p.splitlines()[0][:200]}"
            counts = summary.setdefault("problem_counts", {})
            counts[key] = counts.get(key, 0) + 1
        if problems and len(summary["errors"]) < MAX_ERRORS:
            summary["errors"].append({"line": n, "class_uid": cls, "problems": problems,
                                      "event": line[:2000]})
        elif problems:
            summary["more_errors"] = summary.get("more_errors", 0) + 1
    print(json.dumps(summary))
    sys.exit(1 if summary["errors"] else 0)


if __name__ == "__main__":
    main()
