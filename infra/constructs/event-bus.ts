import { Duration } from "aws-cdk-lib";
import { type Archive, EventBus } from "aws-cdk-lib/aws-events";
import type { Grant, IGrantable } from "aws-cdk-lib/aws-iam";
import { Construct } from "constructs";

/**
 * The `source` of every event Agentry publishes. Mirrors `EVENT_SOURCE` in `shared/domain/events.ts`
 * (infra imports no runtime code; a test keeps the two equal).
 */
export const AGENTRY_EVENT_SOURCE = "agentry";

export interface AgentryEventBusProps {
  /**
   * The bus name, which the runtime receives as `EVENT_BUS_NAME`.
   *
   * @default "agentry"
   */
  readonly eventBusName?: string;
  /**
   * How long the archive keeps Agentry's events for replay.
   *
   * @default Duration.days(30)
   */
  readonly archiveRetention?: Duration;
}

/**
 * The custom EventBridge bus for task lifecycle events and agent messages, with an archive of every
 * Agentry event for replay. It has no resource policy: only principals of this account that were
 * granted `events:PutEvents` can publish.
 *
 * @example
 * const bus = new AgentryEventBus(this, "Bus");
 * bus.grantPutEvents(supervisorFunction);
 */
export class AgentryEventBus extends Construct {
  public readonly eventBus: EventBus;
  public readonly archive: Archive;

  constructor(scope: Construct, id: string, props: AgentryEventBusProps = {}) {
    super(scope, id);
    const eventBusName = props.eventBusName ?? "agentry";
    const archiveRetention = props.archiveRetention ?? Duration.days(30);
    if (!/^[A-Za-z0-9._-]{1,256}$/.test(eventBusName) || eventBusName === "default") {
      throw new Error(
        `eventBusName must be 1-256 letters, digits, dots, hyphens or underscores and not "default", got "${eventBusName}"`,
      );
    }
    if (archiveRetention.toSeconds() < Duration.days(1).toSeconds()) {
      throw new Error(`archiveRetention must be at least 1 day, got ${archiveRetention.toHumanString()}`);
    }

    this.eventBus = new EventBus(this, "EventBus", { eventBusName });
    this.archive = this.eventBus.archive("Archive", {
      description: "Every Agentry event, for replay after an incident or a consumer fix",
      eventPattern: { source: [AGENTRY_EVENT_SOURCE] },
      retention: archiveRetention,
    });
  }

  /** Grants `events:PutEvents` on this bus only. */
  grantPutEvents(grantee: IGrantable): Grant {
    return this.eventBus.grantPutEventsTo(grantee);
  }
}
