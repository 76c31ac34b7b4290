// Reads {"cases": [{"id", "policies": [{name, policy}], "request": {action, resource, context}}]}
// on stdin; writes {"<id>": "Allowed" | "ImplicitlyDenied" | "ExplicitlyDenied" | "error: ..."}.
// Identity policies, and a resource's own policy where AWS requires one (a KMS key's): the
// functions' roles are in the account that owns every resource.
import { runSimulation } from '@cloud-copilot/iam-simulate'

const ACCOUNT = '123456789012'
let input = ''
for await (const chunk of process.stdin) input += chunk
const { cases } = JSON.parse(input)
const decisions = {}
for (const { id, policies, principal, request, resourcePolicy } of cases) {
  const simulation = {
    identityPolicies: policies,
    // A KMS key is reached only as its key policy lets IAM decide (the key policy's root grant).
    ...(resourcePolicy ? { resourcePolicy } : {}),
    serviceControlPolicies: [],
    resourceControlPolicies: [],
    request: {
      action: request.action,
      principal,
      resource: { accountId: ACCOUNT, resource: request.resource },
      contextVariables: request.context,
    },
  }
  const answer = await runSimulation(simulation, {})
  decisions[id] = answer.errors
    ? `error: ${JSON.stringify(answer.errors)}`
    : answer.overallResult ?? answer.result?.analysis?.result
}
process.stdout.write(JSON.stringify(decisions))
