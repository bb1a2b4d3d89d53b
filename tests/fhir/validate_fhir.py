#!/usr/bin/env python3
"""Validates a FHIR R4 JSON file against the official FHIR R4 JSON schema (draft-06).

    validate_fhir.py SCHEMA FILE

SCHEMA is fhir.schema.json (deploy/fetch-fhir-schema.sh fetches it); FILE the resource or
Bundle to check. Exits 0 when FILE is valid; otherwise 1, printing each problem the validator
found (where, and what) -- or why it could not validate at all (a missing file, no jsonschema).
Uses python3-jsonschema's Draft6Validator, the draft the schema declares.
"""
import json
import sys


def explain(error, out):
    """The problems under `error`. A resource that fails the schema fails a `oneOf` over every
    resource type; only the alternative for its own resourceType says what is wrong with it."""
    if error.validator == "oneOf" and isinstance(error.instance, dict) and error.context:
        rtype = error.instance.get("resourceType")
        own = [i for i, alt in enumerate(error.validator_value)
               if isinstance(alt, dict) and alt.get("$ref", "").endswith("/" + str(rtype))]
        subs = [e for e in error.context if own and e.relative_schema_path[0] == own[0]]
        if subs:
            for sub in subs:
                explain(sub, out)
            return
    out.append(("/".join(str(p) for p in error.absolute_path), error.message))


def main(argv):
    if len(argv) != 3:
        print("usage: validate_fhir.py SCHEMA FILE", file=sys.stderr)
        return 1
    try:
        import jsonschema
    except ImportError:
        print("validate_fhir: python3-jsonschema is not installed (deploy/install-deps.sh)",
              file=sys.stderr)
        return 1
    try:
        with open(argv[1], encoding="utf-8") as f:
            schema = json.load(f)
        with open(argv[2], encoding="utf-8") as f:
            instance = json.load(f)
    except (OSError, ValueError) as e:
        print(f"validate_fhir: {e}", file=sys.stderr)
        return 1
    if schema.get("$schema") != "http://json-schema.org/draft-06/schema#":
        print("validate_fhir: the schema is not a draft-06 schema", file=sys.stderr)
        return 1
    jsonschema.Draft6Validator.check_schema(schema)
    validator = jsonschema.Draft6Validator(schema)
    errors = list(validator.iter_errors(instance))
    problems = []
    for error in errors:
        explain(error, problems)
    for where, message in problems:
        print(f"{where or '(top)'}: {message[:400]}")
    if errors:
        print(f"validate_fhir: {argv[2]}: {len(problems)} problem(s)", file=sys.stderr)
        return 1
    print(f"validate_fhir: {argv[2]} is valid FHIR R4 (schema {schema.get('id', '?')})")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
