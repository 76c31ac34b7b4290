"""Packages CareLoop for one stage: `chalice package` merged with `infra/platform.yaml`, with
every name the stage's own (`make package STAGE=staging REGION=eu-west-1`).

What Chalice cannot know is set here: the region it needs to package, the stage the SNS handlers'
topics are named after when app.py is imported (CARELOOP_STAGE), and the template's Stage
parameter, pinned to the packaged stage so a staging package cannot be deployed under prod names.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def package(stage: str, region: str, out: Path) -> Path:
    """Writes `out/sam.json` (and `deployment.zip`) and returns the template's path."""
    chalice = Path(sys.executable).parent / "chalice"
    # Packaging calls no AWS service: an emulator's endpoint left in the environment is not used.
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_ENDPOINT")}
    env.update({"CARELOOP_STAGE": stage, "AWS_DEFAULT_REGION": region})
    command = [str(chalice), "package", "--stage", stage]
    done = subprocess.run(  # noqa: S603 - the venv's chalice, arguments of our own
        [*command, "--merge-template", "infra/platform.yaml", str(out)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"chalice package failed:\n{done.stdout}{done.stderr}")
    # Chalice writes YAML after a YAML merge template; JSON is as deployable and edited safely.
    from cfnlint.decode import cfn_yaml

    written = out / "sam.yaml"
    template = json.loads(json.dumps(cfn_yaml.load(str(written))))
    template["Parameters"]["Stage"].update({"Default": stage, "AllowedValues": [stage]})
    # The state machines' DefinitionUri is relative to infra/; `aws cloudformation package`
    # reads it relative to this template.
    for resource in template["Resources"].values():
        uri = resource.get("Properties", {}).get("DefinitionUri")
        if resource["Type"] == "AWS::Serverless::StateMachine" and isinstance(uri, str):
            definition = (ROOT / "infra" / uri).resolve()
            resource["Properties"]["DefinitionUri"] = os.path.relpath(definition, out)
    path = out / "sam.json"
    path.write_text(json.dumps(template, indent=2) + "\n")
    written.unlink()
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--stage", required=True)
    parser.add_argument("--region", required=True)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    out = args.out or ROOT / "build" / args.stage
    print(package(args.stage, args.region, out))


if __name__ == "__main__":
    main()
