import { DynamoAgentRegistry } from "#shared/adapters/aws/dynamo-agent-registry";
import { createTestTable, localDynamoClient, readStoredAgent } from "#test/support/aws";
import { describeAgentRegistryContract } from "./agent-registry.contract.ts";

const client = localDynamoClient();

describeAgentRegistryContract("DynamoAgentRegistry", {
  create: async () => new DynamoAgentRegistry({ client, tableName: await createTestTable(client) }),
  inspect: (registry, agentId) => readStoredAgent(client, registry.tableName, agentId),
});
