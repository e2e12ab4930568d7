#!/usr/bin/env python3
"""SBOMs: `hoist sbom` of real images and of trees real package managers
filled, checked against independent readers and the SPDX 2.3 JSON schema.

The schema (tests/data/schemas/spdx-2.3.schema.json, from spdx/spdx-spec)
is applied by Ajv (tests/integration/schema_check.js), installed once under
$HOIST_CACHE/npm/schema.
"""
import copy
import json

from hoisttest import main, schema_errors, test

SPDX_SCHEMA = "spdx-2.3.schema.json"

# A small document written by hand from the SPDX 2.3 specification.
MINIMAL = {
    "spdxVersion": "SPDX-2.3",
    "dataLicense": "CC0-1.0",
    "SPDXID": "SPDXRef-DOCUMENT",
    "name": "example",
    "documentNamespace": "https://example.test/spdxdocs/example-1",
    "creationInfo": {"created": "2026-01-01T00:00:00Z", "creators": ["Tool: example-1"]},
    "packages": [{
        "SPDXID": "SPDXRef-Package-a-1", "name": "a", "versionInfo": "1.0",
        "downloadLocation": "NOASSERTION", "filesAnalyzed": False,
        "externalRefs": [{"referenceCategory": "PACKAGE-MANAGER", "referenceType": "purl",
                          "referenceLocator": "pkg:pypi/a@1.0"}],
    }],
    "relationships": [{"spdxElementId": "SPDXRef-DOCUMENT", "relationshipType": "DESCRIBES",
                       "relatedSpdxElement": "SPDXRef-Package-a-1"}],
}


@test
def schema_check_accepts_a_valid_document():
    assert schema_errors(SPDX_SCHEMA, MINIMAL) == []


@test
def schema_check_refuses_what_the_schema_refuses():
    # each a document the SPDX 2.3 schema must refuse, and the property Ajv names
    def without(key):
        d = copy.deepcopy(MINIMAL)
        del d[key]
        return d

    bad_category = copy.deepcopy(MINIMAL)
    bad_category["packages"][0]["externalRefs"][0]["referenceCategory"] = "NOT-A-CATEGORY"
    bad_relationship = copy.deepcopy(MINIMAL)
    bad_relationship["relationships"][0]["relationshipType"] = "OWNS"
    wrong_type = copy.deepcopy(MINIMAL)
    wrong_type["packages"][0]["filesAnalyzed"] = "no"
    for doc, needle in ((without("SPDXID"), "SPDXID"), (without("creationInfo"), "creationInfo"),
                        (bad_category, "allowed values"), (bad_relationship, "allowed values"),
                        (wrong_type, "boolean"), ([], "object")):
        errors = schema_errors(SPDX_SCHEMA, doc)
        assert errors, f"accepted: {doc}"
        assert needle in json.dumps(errors), (needle, errors)


if __name__ == "__main__":
    main()
