"""What every FHIR mapping shares: the version, our URLs, references, ids and translations."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from typing import Any

# The FHIR version every resource is built for and checked against: R4B, whose resources used
# here are wire-compatible with R4 (4.0.1). `validation` imports the models of this version
# (`fhir.resources.R4B`); a test holds the two together.
FHIR_VERSION = "4.3.0"

# Our own definitions, for what has no FHIR home but matters to a reader of the export.
STRUCTURE_DEFINITION_BASE = "https://careloop.example/fhir/StructureDefinition/"
CODE_SYSTEM_BASE = "https://careloop.example/fhir/CodeSystem/"
TIME_ZONE_EXTENSION = STRUCTURE_DEFINITION_BASE + "time-zone"
DEPARTMENT_SYSTEM = CODE_SYSTEM_BASE + "department"  # an appointment's serviceType: our department

# HL7's own extension for a translated text, and the code system of language tags.
TRANSLATION_EXTENSION = "http://hl7.org/fhir/StructureDefinition/translation"
LANGUAGE_SYSTEM = "urn:ietf:bcp:47"

LANGUAGES = ("zh-CN", "zh-TW", "en", "en-GB", "en-US")  # common.json#/$defs/language

# `Patient/123`, `https://host/fhir/Patient/123`, `Patient/123/_history/2`: type and id.
LITERAL_REFERENCE = re.compile(
    r"(?:^|/)(?P<type>[A-Z][A-Za-z]+)/(?P<id>[A-Za-z0-9\-.]{1,64})(?:/_history/[^/]+)?$"
)

Resource = dict[str, Any]  # a FHIR resource (or element) as plain JSON
Value = str | int | float | bool  # an answer, option or rule value of ours


def typed_value(prefix: str, value: Value) -> Resource:
    """FHIR's choice of type (`valueBoolean`, `answerInteger`...) by the JSON type of `value`."""
    if isinstance(value, bool):
        return {f"{prefix}Boolean": value}
    if isinstance(value, int):
        return {f"{prefix}Integer": value}
    if isinstance(value, float):
        return {f"{prefix}Decimal": value}
    return {f"{prefix}String": value}


def option_code(value: Value) -> str:
    """The code of a choice option: its value as a string (codes are strings)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def tenant_mrn_system(tenant_id: str) -> str:
    """The identifier system of a hospital's medical record numbers. An MRN is unique within its
    tenant only, and the tenant record names no system of the hospital's own, so ours names the
    tenant."""
    return f"urn:careloop:{tenant_id}:mrn"


def mrn_system_of(tenant: Mapping[str, Any]) -> str:
    """The MRN system a hospital set (`fhir.mrn_system`: its own OID or URL), else ours."""
    configured = (tenant.get("fhir") or {}).get("mrn_system")
    return str(configured) if configured else tenant_mrn_system(str(tenant["id"]))


def reference(resource_type: str, resource_id: str) -> dict[str, str]:
    return {"reference": f"{resource_type}/{resource_id}"}


def derived_id(prefix: str, *parts: str) -> str:
    """A stable id for a resource we derive from a record without an id of its own (a consent
    of one channel, a flag, a message): the same record always gives the same id, within the
    64 characters FHIR allows however long our ids are."""
    digest = hashlib.sha256("|".join(parts).encode()).hexdigest()[:16]
    return f"{prefix}-{digest}"


def meta_of(doc: Mapping[str, Any]) -> dict[str, str]:
    """Our version and last change as FHIR's meta: lets a reader tell a changed record."""
    meta: dict[str, str] = {}
    if "version" in doc:
        meta["versionId"] = str(doc["version"])
    if "updated_at" in doc:
        meta["lastUpdated"] = doc["updated_at"]
    return meta


def with_meta(resource: Resource, doc: Mapping[str, Any]) -> Resource:
    meta = meta_of(doc)
    if meta:
        resource["meta"] = meta
    return resource


def coding(system: str, code: str, display: str | None = None) -> dict[str, str]:
    built = {"system": system, "code": code}
    if display is not None:
        built["display"] = display
    return built


def concept(system: str, code: str, text: str | None = None) -> Resource:
    """A CodeableConcept of one coding, with its text."""
    return {"coding": [coding(system, code)], "text": text or code}


def text_concept(text: str) -> Resource:
    return {"text": text}


def translated(texts: Mapping[str, str], language: str) -> tuple[str | None, Resource | None]:
    """A language map as a FHIR string and its `_` element: the text in `language` as the value,
    the others as translation extensions. A text missing in `language` gives no value, only the
    translations (FHIR allows a primitive of extensions alone), so nothing is passed off as
    being in a language it is not."""
    extensions = [
        {
            "url": TRANSLATION_EXTENSION,
            "extension": [
                {"url": "lang", "valueCode": other},
                {"url": "content", "valueString": text},
            ],
        }
        for other, text in texts.items()
        if other != language
    ]
    return texts.get(language), ({"extension": extensions} if extensions else None)


def put_translated(target: Resource, name: str, texts: Mapping[str, str], language: str) -> None:
    """`target[name]` and `target[_name]` from a language map."""
    value, element = translated(texts, language)
    if value is not None:
        target[name] = value
    if element is not None:
        target[f"_{name}"] = element
