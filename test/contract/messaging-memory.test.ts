import { MemoryEventBus } from "#shared/adapters/memory/event-bus";
import { describeMessagingContract } from "./messaging.contract.ts";

describeMessagingContract("MemoryEventBus", {
  create: () => new MemoryEventBus(),
  settle: (bus) => (bus as MemoryEventBus).idle(),
});
