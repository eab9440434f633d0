import { randomUUID } from "node:crypto";
import { once } from "node:events";
import { createServer as createHttpServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo, Server, Socket } from "node:net";
import rhea, {
  type Connection,
  type Delivery,
  type EventContext,
  type Message,
  type Receiver,
  type Sender,
} from "rhea";
import { compileSqlFilter, type PropertyReader, SqlFilterSyntaxError, type SqlValue } from "./sql-filter.ts";

/**
 * A local Azure Service Bus for tests and `npm start -- --azure`: an AMQP 1.0 peer, built on rhea, that
 * the real `@azure/service-bus` client talks to with a connection string ending in
 * `UseDevelopmentEmulator=true;` (plain AMQP, SASL ANONYMOUS). It implements the documented subset in
 * docs/azure.md ("The local peer") and refuses the rest with `amqp:not-implemented`; it is test
 * infrastructure, not a broker.
 */

export interface QueueSpec {
  readonly name: string;
  /** @default 60 */
  readonly lockDurationSeconds?: number;
  /** @default 10 (the Service Bus default) */
  readonly maxDeliveryCount?: number;
  /** Drop a message whose message id was seen this recently. @default 600 */
  readonly duplicateDetectionWindowSeconds?: number;
  /** Expired messages go to the dead-letter sub-queue instead of being dropped. @default false */
  readonly deadLetteringOnMessageExpiration?: boolean;
}

export type RuleFilterSpec =
  | { readonly sql: string }
  | {
      readonly correlation: {
        readonly correlationId?: string;
        readonly messageId?: string;
        readonly subject?: string;
        readonly applicationProperties?: Readonly<Record<string, string | number | boolean>>;
      };
    }
  | { readonly true: true };

export interface RuleSpec {
  readonly name: string;
  readonly filter: RuleFilterSpec;
}

export interface SubscriptionSpec extends Omit<QueueSpec, "name" | "duplicateDetectionWindowSeconds"> {
  readonly name: string;
  /** @default [] — no rule, nothing is delivered until a rule is added (over `$management`) */
  readonly rules?: readonly RuleSpec[];
}

export interface TopicSpec {
  readonly name: string;
  /** @default 600 */
  readonly duplicateDetectionWindowSeconds?: number;
  readonly subscriptions?: readonly SubscriptionSpec[];
}

/** What an entity holds right now (the admin API's answer). */
export interface EntityState {
  readonly active: number;
  readonly locked: number;
  readonly scheduled: number;
  readonly deferred: number;
  /** Messages the peer dropped because their time to live ran out. */
  readonly expired: number;
  readonly deadLettered: readonly {
    readonly body: string;
    readonly reason?: string;
    readonly description?: string;
    readonly applicationProperties: Readonly<Record<string, unknown>>;
  }[];
}

export interface ServiceBusPeerOptions {
  /** @default 0 (a free port) */
  readonly port?: number;
  /** Port of the admin HTTP API (create entities, inspect them). @default 0 */
  readonly adminPort?: number;
  readonly queues?: readonly QueueSpec[];
  readonly topics?: readonly TopicSpec[];
}

export interface RunningServiceBusPeer {
  /** `Endpoint=sb://127.0.0.1:<port>;…;UseDevelopmentEmulator=true;` */
  readonly connectionString: string;
  readonly port: number;
  /** Base URL of the admin HTTP API: `PUT /queues/<name>`, `PUT /topics/<name>`, `GET /entities/<path>`. */
  readonly adminUrl: string;
  createQueue(spec: QueueSpec): void;
  createTopic(spec: TopicSpec): void;
  inspect(path: string): EntityState;
  stop(): Promise<void>;
}

const MAX_MESSAGE_SIZE = 262_144;
const BATCH_FORMAT = 0x80013700;
const DEAD_LETTER_QUEUE = "$DeadLetterQueue";
const SUBSCRIPTIONS = "Subscriptions";
const LOCK_LOST = "com.microsoft:message-lock-lost";
const NOT_FOUND = "amqp:not-found";
const NOT_IMPLEMENTED = "amqp:not-implemented";

interface StoredMessage {
  readonly seq: number;
  message: Message;
  readonly messageId: string | undefined;
  readonly enqueuedAt: number;
  readonly expiresAt: number;
  /** Deliveries so far (the AMQP header's delivery-count is the prior ones when delivered). */
  deliveryCount: number;
}

interface Lock {
  readonly token: string;
  readonly stored: StoredMessage;
  until: number;
  timer: NodeJS.Timeout;
}

interface Rule {
  readonly name: string;
  readonly matches: (message: Message) => boolean;
}

class PeerError extends Error {
  constructor(
    readonly condition: string,
    message: string,
    readonly statusCode = 500,
  ) {
    super(message);
    this.name = "PeerError";
  }
}

/** Link fields rhea has but does not declare in its typings. */
interface AttachFields {
  source?: unknown;
  target?: unknown;
  snd_settle_mode?: number;
  rcv_settle_mode?: number;
  max_message_size?: number;
}
interface LinkState {
  readonly remote: { readonly attach?: AttachFields };
  readonly local: { readonly attach: AttachFields };
}
const linkState = (link: Sender | Receiver) => link as unknown as LinkState;

/** Delivery outcomes: rhea exports them at run time without declaring them. */
type Outcome = unknown;
const outcomes = rhea.message as unknown as {
  accepted(): { described(): Outcome };
  released(): { described(): Outcome };
  modified(fields: object): { described(): Outcome };
  rejected(fields: object): { described(): Outcome };
};

let sequence = 0;

/** A queue, a subscription, or one of their dead-letter sub-queues: messages that are received. */
class MessageEntity {
  readonly active: StoredMessage[] = [];
  readonly locks = new Map<string, Lock>();
  readonly deferred = new Map<number, StoredMessage>();
  readonly consumers = new Set<Sender>();
  readonly lockOfDelivery = new WeakMap<Delivery, Lock>();
  expired = 0;

  constructor(
    readonly path: string,
    readonly lockDurationMs: number,
    readonly maxDeliveryCount: number,
    readonly deadLetteringOnExpiration: boolean,
    readonly deadLetter: MessageEntity | undefined,
  ) {}

  static create(path: string, spec: Omit<QueueSpec, "name">): MessageEntity {
    const lockMs = (spec.lockDurationSeconds ?? 60) * 1000;
    const dlq = new MessageEntity(
      `${path}/${DEAD_LETTER_QUEUE}`,
      lockMs,
      Number.POSITIVE_INFINITY,
      false,
      undefined,
    );
    return new MessageEntity(
      path,
      lockMs,
      spec.maxDeliveryCount ?? 10,
      spec.deadLetteringOnMessageExpiration ?? false,
      dlq,
    );
  }

  enqueue(stored: StoredMessage): void {
    insertBySeq(this.active, stored);
    this.pump();
  }

  /** Sends available messages to consumers with credit, locking each (peek-lock) or removing it. */
  pump(): void {
    for (const consumer of this.consumers) {
      // A client that went away without detaching: its locks expire, nothing more goes to it.
      if (!consumer.is_open() || !consumer.connection.is_open()) {
        this.consumers.delete(consumer);
        continue;
      }
      while (consumer.sendable()) {
        const stored = this.nextAvailable();
        if (stored === undefined) return;
        this.deliver(consumer, stored);
      }
    }
  }

  private nextAvailable(): StoredMessage | undefined {
    const now = Date.now();
    for (;;) {
      const next = this.active.shift();
      if (next === undefined) return undefined;
      if (next.expiresAt > now) return next;
      this.expire(next);
    }
  }

  private expire(stored: StoredMessage): void {
    this.expired++;
    if (this.deadLetteringOnExpiration) {
      this.moveToDeadLetter(stored, "TTLExpiredException", "The message expired and was dead lettered.");
    }
  }

  private deliver(consumer: Sender, stored: StoredMessage): void {
    const receiveAndDelete = linkState(consumer).remote.attach?.snd_settle_mode === 1;
    const token = randomUUID();
    const now = Date.now();
    const until = now + this.lockDurationMs;
    const outgoing: Message = {
      ...stored.message,
      delivery_count: stored.deliveryCount,
      message_annotations: {
        ...(stored.message.message_annotations ?? {}),
        "x-opt-sequence-number": rhea.types.wrap_long(stored.seq),
        "x-opt-enqueued-time": new Date(stored.enqueuedAt),
        ...(receiveAndDelete ? {} : { "x-opt-locked-until": new Date(until) }),
      },
    };
    stored.deliveryCount++;
    const delivery = consumer.send(outgoing, dotNetGuidBytes(token));
    if (receiveAndDelete) return;
    const lock: Lock = {
      token,
      stored,
      until,
      timer: setTimeout(() => this.lockExpired(lock), this.lockDurationMs),
    };
    lock.timer.unref();
    this.locks.set(token, lock);
    this.lockOfDelivery.set(delivery, lock);
  }

  private lockExpired(lock: Lock): void {
    if (this.locks.get(lock.token) !== lock) return;
    this.locks.delete(lock.token);
    this.release(lock.stored);
  }

  /** A live lock, or a lock-lost error: expired, settled, or never issued. */
  liveLock(token: string): Lock {
    const lock = this.locks.get(token);
    if (lock === undefined || lock.until <= Date.now()) {
      throw new PeerError(
        LOCK_LOST,
        `The lock supplied is invalid: it expired or the message was settled (lock ${token}).`,
        410,
      );
    }
    return lock;
  }

  renew(token: string): Date {
    const lock = this.liveLock(token);
    clearTimeout(lock.timer);
    lock.until = Date.now() + this.lockDurationMs;
    lock.timer = setTimeout(() => this.lockExpired(lock), this.lockDurationMs);
    lock.timer.unref();
    return new Date(lock.until);
  }

  complete(token: string): void {
    const lock = this.liveLock(token);
    this.unlock(lock);
  }

  abandon(token: string, propertiesToModify?: Record<string, unknown>): void {
    const lock = this.liveLock(token);
    this.unlock(lock);
    if (propertiesToModify) applyProperties(lock.stored, propertiesToModify);
    this.release(lock.stored);
  }

  defer(token: string): void {
    const lock = this.liveLock(token);
    this.unlock(lock);
    this.deferred.set(lock.stored.seq, lock.stored);
  }

  deadLetterLocked(token: string, reason: string | undefined, description: string | undefined): void {
    const lock = this.liveLock(token);
    this.unlock(lock);
    this.moveToDeadLetter(lock.stored, reason, description);
  }

  private unlock(lock: Lock): void {
    clearTimeout(lock.timer);
    this.locks.delete(lock.token);
  }

  /** Back to the queue, or to the dead-letter sub-queue once every allowed delivery was used. */
  private release(stored: StoredMessage): void {
    if (stored.deliveryCount >= this.maxDeliveryCount) {
      this.moveToDeadLetter(
        stored,
        "MaxDeliveryCountExceeded",
        `Message could not be consumed after ${this.maxDeliveryCount} delivery attempts.`,
      );
      return;
    }
    this.enqueue(stored);
  }

  private moveToDeadLetter(
    stored: StoredMessage,
    reason: string | undefined,
    description: string | undefined,
  ): void {
    if (this.deadLetter === undefined) return;
    const properties: Record<string, unknown> = { ...(stored.message.application_properties ?? {}) };
    if (reason !== undefined) properties.DeadLetterReason = reason;
    if (description !== undefined) properties.DeadLetterErrorDescription = description;
    this.deadLetter.enqueue({
      ...stored,
      message: {
        ...stored.message,
        application_properties: properties,
        message_annotations: {
          ...(stored.message.message_annotations ?? {}),
          "x-opt-deadletter-source": this.path,
        },
      },
      expiresAt: Number.POSITIVE_INFINITY,
    });
  }

  state(): EntityState {
    return {
      active: this.active.length,
      locked: this.locks.size,
      scheduled: 0,
      deferred: this.deferred.size,
      expired: this.expired,
      deadLettered: this.deadLetter
        ? [...this.deadLetter.active, ...[...this.deadLetter.locks.values()].map((l) => l.stored)]
            .sort((a, b) => a.seq - b.seq)
            .map((stored) => {
              const properties = stored.message.application_properties ?? {};
              return {
                body: bodyText(stored.message),
                ...(typeof properties.DeadLetterReason === "string"
                  ? { reason: properties.DeadLetterReason }
                  : {}),
                ...(typeof properties.DeadLetterErrorDescription === "string"
                  ? { description: properties.DeadLetterErrorDescription }
                  : {}),
                applicationProperties: properties,
              };
            })
        : [],
    };
  }
}

/** Where senders send: a queue, or a topic that copies each message to the subscriptions it matches. */
abstract class SendTarget {
  private readonly seen = new Map<string, number>();
  readonly scheduled = new Map<number, { stored: StoredMessage; timer: NodeJS.Timeout }>();

  constructor(
    readonly path: string,
    private readonly duplicateWindowMs: number,
  ) {}

  /** Accepts one sent message: drops duplicates, holds scheduled ones, routes the rest. */
  accept(message: Message): number {
    const now = Date.now();
    // Service Bus gives a message sent without an id one of its own.
    if (message.message_id === undefined || message.message_id === null)
      message.message_id = randomUUID().replace(/-/g, "");
    const messageId = String(message.message_id);
    if (this.duplicateWindowMs > 0) {
      this.forgetOld(now);
      if (this.seen.has(messageId)) return -1;
      this.seen.set(messageId, now);
    }
    const ttl = typeof message.ttl === "number" && message.ttl > 0 ? message.ttl : Number.POSITIVE_INFINITY;
    const scheduledAt = toMillis(message.message_annotations?.["x-opt-scheduled-enqueue-time"]);
    const stored: StoredMessage = {
      seq: ++sequence,
      message,
      messageId,
      enqueuedAt: scheduledAt !== undefined && scheduledAt > now ? scheduledAt : now,
      expiresAt: (scheduledAt !== undefined && scheduledAt > now ? scheduledAt : now) + ttl,
      deliveryCount: 0,
    };
    if (scheduledAt !== undefined && scheduledAt > now) {
      const timer = setTimeout(() => {
        this.scheduled.delete(stored.seq);
        this.route(stored);
      }, scheduledAt - now);
      timer.unref();
      this.scheduled.set(stored.seq, { stored, timer });
    } else {
      this.route(stored);
    }
    return stored.seq;
  }

  cancelScheduled(seq: number): void {
    const entry = this.scheduled.get(seq);
    if (entry === undefined) return;
    clearTimeout(entry.timer);
    this.scheduled.delete(seq);
  }

  close(): void {
    for (const { timer } of this.scheduled.values()) clearTimeout(timer);
    this.scheduled.clear();
  }

  protected abstract route(stored: StoredMessage): void;

  private forgetOld(now: number): void {
    for (const [id, at] of this.seen) {
      if (now - at < this.duplicateWindowMs) break;
      this.seen.delete(id);
    }
  }
}

class Queue extends SendTarget {
  constructor(
    readonly entity: MessageEntity,
    duplicateWindowMs: number,
  ) {
    super(entity.path, duplicateWindowMs);
  }

  protected route(stored: StoredMessage): void {
    this.entity.enqueue(stored);
  }
}

class Subscription {
  readonly rules = new Map<string, Rule>();
  constructor(readonly entity: MessageEntity) {}
}

class Topic extends SendTarget {
  readonly subscriptions = new Map<string, Subscription>();

  protected route(stored: StoredMessage): void {
    for (const subscription of this.subscriptions.values()) {
      if ([...subscription.rules.values()].some((rule) => rule.matches(stored.message))) {
        subscription.entity.enqueue({ ...stored, message: { ...stored.message } });
      }
    }
  }
}

/**
 * Starts the peer on localhost (AMQP, and the admin HTTP API), with the given entities.
 *
 * @example
 * const peer = await startServiceBusPeer({ queues: [{ name: "diagnostics", maxDeliveryCount: 5 }] });
 * const client = new ServiceBusClient(peer.connectionString);
 * // …
 * await client.close();
 * await peer.stop();
 */
export async function startServiceBusPeer(
  options: ServiceBusPeerOptions = {},
): Promise<RunningServiceBusPeer> {
  const queues = new Map<string, Queue>();
  const topics = new Map<string, Topic>();
  const key = (name: string) => name.toLowerCase();

  const createQueue = (spec: QueueSpec) => {
    if (queues.has(key(spec.name)) || topics.has(key(spec.name))) return;
    queues.set(
      key(spec.name),
      new Queue(MessageEntity.create(spec.name, spec), (spec.duplicateDetectionWindowSeconds ?? 600) * 1000),
    );
  };
  const createTopic = (spec: TopicSpec) => {
    let topic = topics.get(key(spec.name));
    if (topic === undefined) {
      if (queues.has(key(spec.name)))
        throw new PeerError("amqp:invalid-field", `${spec.name} is a queue`, 409);
      topic = new Topic(spec.name, (spec.duplicateDetectionWindowSeconds ?? 600) * 1000);
      topics.set(key(spec.name), topic);
    }
    for (const sub of spec.subscriptions ?? []) {
      if (topic.subscriptions.has(key(sub.name))) continue;
      const subscription = new Subscription(
        MessageEntity.create(`${spec.name}/${SUBSCRIPTIONS}/${sub.name}`, sub),
      );
      for (const rule of sub.rules ?? []) subscription.rules.set(key(rule.name), compileRule(rule));
      topic.subscriptions.set(key(sub.name), subscription);
    }
  };
  for (const spec of options.queues ?? []) createQueue(spec);
  for (const spec of options.topics ?? []) createTopic(spec);

  /** The receivable entity at a path: queue, subscription, or their dead-letter sub-queue. */
  const receivable = (path: string): MessageEntity => {
    const parts = normalize(path).split("/");
    const dlq = parts.at(-1)?.toLowerCase() === DEAD_LETTER_QUEUE.toLowerCase();
    if (dlq) parts.pop();
    let entity: MessageEntity | undefined;
    if (parts.length === 1) entity = queues.get(key(parts[0] ?? ""))?.entity;
    else if (parts.length === 3 && parts[1]?.toLowerCase() === "subscriptions") {
      entity = topics.get(key(parts[0] ?? ""))?.subscriptions.get(key(parts[2] ?? ""))?.entity;
    }
    if (entity === undefined)
      throw new PeerError(NOT_FOUND, `The messaging entity '${path}' could not be found.`, 404);
    return dlq ? (entity.deadLetter as MessageEntity) : entity;
  };
  const sendTarget = (path: string): SendTarget => {
    const name = key(normalize(path));
    const target = queues.get(name) ?? topics.get(name);
    if (target === undefined)
      throw new PeerError(NOT_FOUND, `The messaging entity '${path}' could not be found.`, 404);
    return target;
  };
  const subscriptionAt = (path: string): Subscription => {
    const parts = normalize(path).split("/");
    const subscription =
      parts.length === 3
        ? topics.get(key(parts[0] ?? ""))?.subscriptions.get(key(parts[2] ?? ""))
        : undefined;
    if (subscription === undefined)
      throw new PeerError(NOT_FOUND, `The subscription '${path}' could not be found.`, 404);
    return subscription;
  };

  const container = rhea.create_container({
    id: "agentry-servicebus-peer",
    autoaccept: false,
    treat_modified_as_released: false,
  });
  const replySenders = new WeakMap<Connection, Map<string, Sender>>();
  const sockets = new Set<Socket>();

  container.on("sender_open", (context: EventContext) => {
    const sender = context.sender as Sender;
    const source = linkState(sender).remote.attach?.source as
      | { address?: string; filter?: unknown }
      | undefined;
    const address = source?.address ?? "";
    echoAttach(sender);
    if (address === "$cbs" || address.endsWith("/$management")) {
      const target =
        (linkState(sender).remote.attach?.target as { address?: string } | undefined)?.address ?? "";
      const byConnection = replySenders.get(context.connection) ?? new Map<string, Sender>();
      // Replies go to the link whose target is the request's reply-to; the SDK's `$cbs` link names
      // no target, so the link attached from the same node answers too.
      if (target !== "") byConnection.set(target, sender);
      byConnection.set(`source:${address}`, sender);
      replySenders.set(context.connection, byConnection);
      return;
    }
    try {
      if (source?.filter)
        throw new PeerError(NOT_IMPLEMENTED, "link filters (sessions) are not implemented", 501);
      const entity = receivable(address);
      entity.consumers.add(sender);
      sender.on("sendable", () => entity.pump());
      sender.on("sender_draining", () => {
        entity.pump();
        sender.set_drained(true);
      });
      sender.on("sender_close", () => entity.consumers.delete(sender));
      const settle = (delivery: Delivery, action: () => void, outcome: unknown) => {
        try {
          action();
          delivery.update(true, outcome);
        } catch (error) {
          delivery.update(true, outcomes.rejected({ error: amqpError(error) }).described());
        }
      };
      const lockOf = (delivery: Delivery): string => {
        const lock = entity.lockOfDelivery.get(delivery);
        if (lock === undefined) throw new PeerError(LOCK_LOST, "The delivery holds no lock.", 410);
        return lock.token;
      };
      sender.on("accepted", (ctx: EventContext) => {
        const delivery = ctx.delivery as Delivery;
        settle(delivery, () => entity.complete(lockOf(delivery)), outcomes.accepted().described());
      });
      sender.on("released", (ctx: EventContext) => {
        const delivery = ctx.delivery as Delivery;
        settle(delivery, () => entity.abandon(lockOf(delivery)), outcomes.released().described());
      });
      sender.on("modified", (ctx: EventContext) => {
        const delivery = ctx.delivery as Delivery;
        const state = delivery.remote_state as {
          undeliverable_here?: boolean;
          message_annotations?: Record<string, unknown>;
        };
        settle(
          delivery,
          () =>
            state?.undeliverable_here
              ? entity.defer(lockOf(delivery))
              : entity.abandon(lockOf(delivery), state?.message_annotations),
          outcomes.modified({ undeliverable_here: state?.undeliverable_here ?? false }).described(),
        );
      });
      sender.on("rejected", (ctx: EventContext) => {
        const delivery = ctx.delivery as Delivery;
        const error = (
          delivery.remote_state as { error?: { condition?: string; info?: Record<string, unknown> } }
        )?.error;
        settle(
          delivery,
          () => {
            if (error?.condition !== "com.microsoft:dead-letter") {
              throw new PeerError(
                NOT_IMPLEMENTED,
                `rejected with ${String(error?.condition)} is not implemented`,
                501,
              );
            }
            entity.deadLetterLocked(
              lockOf(delivery),
              optionalString(error.info?.DeadLetterReason),
              optionalString(error.info?.DeadLetterErrorDescription),
            );
          },
          outcomes.rejected({}).described(),
        );
      });
    } catch (error) {
      sender.close(amqpError(error));
    }
  });

  container.on("receiver_open", (context: EventContext) => {
    const receiver = context.receiver as Receiver;
    const address =
      (linkState(receiver).remote.attach?.target as { address?: string } | undefined)?.address ?? "";
    echoAttach(receiver);
    if (address !== "$cbs" && !address.endsWith("/$management")) {
      try {
        sendTarget(address);
      } catch (error) {
        receiver.close(amqpError(error));
      }
    }
  });

  container.on("message", (context: EventContext) => {
    const receiver = context.receiver as Receiver;
    const delivery = context.delivery as Delivery;
    const address =
      (linkState(receiver).remote.attach?.target as { address?: string } | undefined)?.address ?? "";
    if (address === "$cbs") {
      delivery.accept();
      reply(context, { "status-code": 200, "status-description": "OK" }, undefined);
      return;
    }
    if (address.endsWith("/$management")) {
      delivery.accept();
      const entityPath = address.slice(0, -"/$management".length);
      try {
        const body = manage(entityPath, context.message as Message);
        reply(context, { "status-code": 200, "status-description": "OK" }, body);
      } catch (error) {
        const e = amqpError(error);
        const status = error instanceof PeerError ? error.statusCode : 500;
        reply(
          context,
          { "status-code": status, "status-description": e.description, "error-condition": e.condition },
          undefined,
        );
      }
      return;
    }
    try {
      const target = sendTarget(address);
      const messages = decodeSent(context);
      for (const message of messages) {
        if (rhea.message.encode(message).length > MAX_MESSAGE_SIZE) {
          throw new PeerError(
            "amqp:link:message-size-exceeded",
            `message larger than ${MAX_MESSAGE_SIZE} bytes`,
          );
        }
      }
      for (const message of messages) target.accept(message);
      delivery.accept();
    } catch (error) {
      delivery.reject(amqpError(error));
    }
  });

  const reply = (context: EventContext, properties: Record<string, unknown>, body: unknown) => {
    const request = context.message as Message;
    const node = (linkState(context.receiver as Receiver).remote.attach?.target as { address?: string })
      ?.address;
    const senders = replySenders.get(context.connection);
    const sender = senders?.get(request.reply_to ?? "") ?? senders?.get(`source:${node}`);
    if (sender === undefined) return;
    sender.send({
      correlation_id: request.message_id,
      application_properties: properties,
      body: body === undefined ? {} : body,
    });
  };

  /** `$management` operations: the ones the adapter and the SDK's receivers and senders use. */
  const manage = (entityPath: string, request: Message): unknown => {
    const operation = String(request.application_properties?.operation ?? "");
    const body = (request.body ?? {}) as Record<string, unknown>;
    switch (operation) {
      case "com.microsoft:renew-lock": {
        const entity = receivable(entityPath);
        const expirations = tokens(body["lock-tokens"]).map((token) => entity.renew(token));
        return { expirations };
      }
      case "com.microsoft:update-disposition": {
        const entity = receivable(entityPath);
        const status = String(body["disposition-status"]);
        for (const token of tokens(body["lock-tokens"])) {
          if (status === "completed") entity.complete(token);
          else if (status === "abandoned") entity.abandon(token);
          else if (status === "defered") entity.defer(token);
          else if (status === "suspended") {
            entity.deadLetterLocked(
              token,
              optionalString(body["deadletter-reason"]),
              optionalString(body["deadletter-description"]),
            );
          } else throw new PeerError(NOT_IMPLEMENTED, `disposition ${status} is not implemented`, 501);
        }
        return {};
      }
      case "com.microsoft:schedule-message": {
        const target = sendTarget(entityPath);
        const entries = (body.messages ?? []) as Record<string, unknown>[];
        const seqs = entries.map((entry) =>
          target.accept(rhea.message.decode(entry.message as Buffer) as unknown as Message),
        );
        return {
          "sequence-numbers": rhea.types.wrap_array(
            seqs.map((s) => Math.max(s, 0)),
            0x81,
            undefined,
          ),
        };
      }
      case "com.microsoft:cancel-scheduled-message": {
        const target = sendTarget(entityPath);
        for (const seq of asArray(body["sequence-numbers"])) target.cancelScheduled(toNumber(seq));
        return {};
      }
      case "com.microsoft:add-rule": {
        const subscription = subscriptionAt(entityPath);
        const name = String(body["rule-name"]);
        if (subscription.rules.has(key(name))) {
          throw new PeerError(
            "com.microsoft:entity-already-exists",
            `The rule '${name}' already exists.`,
            409,
          );
        }
        const description = (body["rule-description"] ?? {}) as Record<string, unknown>;
        if (description["sql-rule-action"] !== undefined && description["sql-rule-action"] !== null) {
          throw new PeerError(NOT_IMPLEMENTED, "rule actions are not implemented", 501);
        }
        const sql = description["sql-filter"] as { expression?: string } | undefined;
        const correlation = description["correlation-filter"] as Record<string, unknown> | undefined;
        if (sql?.expression !== undefined) {
          subscription.rules.set(key(name), compileRule({ name, filter: { sql: sql.expression } }));
        } else if (correlation) {
          const properties = (correlation.properties ?? {}) as Record<string, string | number | boolean>;
          subscription.rules.set(
            key(name),
            compileRule({
              name,
              filter: {
                correlation: {
                  ...(typeof correlation["correlation-id"] === "string"
                    ? { correlationId: correlation["correlation-id"] }
                    : {}),
                  ...(typeof correlation["message-id"] === "string"
                    ? { messageId: correlation["message-id"] }
                    : {}),
                  ...(typeof correlation.label === "string" ? { subject: correlation.label } : {}),
                  applicationProperties: properties,
                },
              },
            }),
          );
          for (const field of ["to", "reply-to", "session-id", "reply-to-session-id", "content-type"]) {
            if (typeof correlation[field] === "string") {
              subscription.rules.delete(key(name));
              throw new PeerError(NOT_IMPLEMENTED, `correlation filter on ${field} is not implemented`, 501);
            }
          }
        } else {
          throw new PeerError("amqp:invalid-field", "a rule needs a sql-filter or a correlation-filter", 400);
        }
        return {};
      }
      case "com.microsoft:remove-rule": {
        const subscription = subscriptionAt(entityPath);
        const name = String(body["rule-name"]);
        if (!subscription.rules.delete(key(name))) {
          throw new PeerError(NOT_FOUND, `The rule '${name}' could not be found.`, 404);
        }
        return {};
      }
      default:
        throw new PeerError(NOT_IMPLEMENTED, `management operation '${operation}' is not implemented`, 501);
    }
  };

  const server: Server = container.listen({ port: options.port ?? 0, host: "127.0.0.1" });
  server.on("connection", (socket: Socket) => {
    sockets.add(socket);
    socket.on("close", () => sockets.delete(socket));
  });
  await once(server, "listening");
  const port = (server.address() as AddressInfo).port;

  const inspect = (path: string): EntityState => {
    const parts = normalize(path).split("/");
    if (parts.length === 1 && topics.has(key(parts[0] ?? ""))) {
      const topic = topics.get(key(parts[0] ?? "")) as Topic;
      return {
        active: 0,
        locked: 0,
        scheduled: topic.scheduled.size,
        deferred: 0,
        expired: 0,
        deadLettered: [],
      };
    }
    const entity = receivable(path);
    const target = parts.length === 1 ? queues.get(key(parts[0] ?? "")) : undefined;
    return { ...entity.state(), scheduled: target?.scheduled.size ?? 0 };
  };

  const admin = createHttpServer((request, response) => {
    void handleAdmin(request, response, { createQueue, createTopic, inspect });
  });
  admin.listen(options.adminPort ?? 0, "127.0.0.1");
  await once(admin, "listening");
  const adminPort = (admin.address() as AddressInfo).port;

  return {
    connectionString: serviceBusPeerConnectionString(port),
    port,
    adminUrl: `http://127.0.0.1:${adminPort}`,
    createQueue,
    createTopic,
    inspect,
    async stop() {
      for (const target of [...queues.values(), ...topics.values()]) target.close();
      for (const queue of queues.values()) clearLocks(queue.entity);
      for (const topic of topics.values()) for (const s of topic.subscriptions.values()) clearLocks(s.entity);
      for (const socket of sockets) socket.destroy();
      await Promise.all([
        new Promise<void>((resolve) => server.close(() => resolve())),
        new Promise<void>((resolve) => {
          admin.closeAllConnections();
          admin.close(() => resolve());
        }),
      ]);
    },
  };
}

/** The connection string the SDK needs to talk to a peer on this port. */
export function serviceBusPeerConnectionString(port: number): string {
  return `Endpoint=sb://127.0.0.1:${port};SharedAccessKeyName=RootManageSharedAccessKey;SharedAccessKey=local;UseDevelopmentEmulator=true;`;
}

async function handleAdmin(
  request: IncomingMessage,
  response: ServerResponse,
  api: {
    createQueue(spec: QueueSpec): void;
    createTopic(spec: TopicSpec): void;
    inspect(path: string): EntityState;
  },
): Promise<void> {
  const send = (status: number, body: unknown) => {
    response.writeHead(status, { "content-type": "application/json" });
    response.end(JSON.stringify(body));
  };
  try {
    const url = new URL(request.url ?? "/", "http://peer");
    const chunks: Buffer[] = [];
    for await (const chunk of request) chunks.push(chunk as Buffer);
    const body = chunks.length > 0 ? (JSON.parse(Buffer.concat(chunks).toString("utf8")) as object) : {};
    const [kind, ...rest] = url.pathname.split("/").filter(Boolean).map(decodeURIComponent);
    const name = rest.join("/");
    if (request.method === "PUT" && kind === "queues") {
      api.createQueue({ ...body, name });
      send(201, { name });
    } else if (request.method === "PUT" && kind === "topics") {
      api.createTopic({ ...body, name });
      send(201, { name });
    } else if (request.method === "GET" && kind === "entities") {
      send(200, api.inspect(name));
    } else {
      send(404, { error: `no admin route ${request.method} ${url.pathname}` });
    }
  } catch (error) {
    const status = error instanceof PeerError ? error.statusCode : 400;
    send(status, { error: error instanceof Error ? error.message : String(error) });
  }
}

function clearLocks(entity: MessageEntity): void {
  for (const lock of entity.locks.values()) clearTimeout(lock.timer);
  if (entity.deadLetter) clearLocks(entity.deadLetter);
}

function compileRule(rule: RuleSpec): Rule {
  const filter = rule.filter;
  if ("true" in filter) return { name: rule.name, matches: () => true };
  if ("sql" in filter) {
    try {
      const predicate = compileSqlFilter(filter.sql);
      return { name: rule.name, matches: (message) => predicate(reader(message)) };
    } catch (error) {
      if (error instanceof SqlFilterSyntaxError) throw new PeerError(NOT_IMPLEMENTED, error.message, 400);
      throw error;
    }
  }
  const c = filter.correlation;
  return {
    name: rule.name,
    matches: (message) =>
      (c.correlationId === undefined || message.correlation_id === c.correlationId) &&
      (c.messageId === undefined || message.message_id === c.messageId) &&
      (c.subject === undefined || message.subject === c.subject) &&
      Object.entries(c.applicationProperties ?? {}).every(
        ([name, value]) => message.application_properties?.[name] === value,
      ),
  };
}

function reader(message: Message): PropertyReader {
  return (scope, name) => {
    if (scope === "user") return sqlValue(message.application_properties?.[name]);
    switch (name.toLowerCase()) {
      case "messageid":
        return sqlValue(message.message_id);
      case "correlationid":
        return sqlValue(message.correlation_id);
      case "label":
        return sqlValue(message.subject);
      case "contenttype":
        return sqlValue(message.content_type);
      default:
        return undefined;
    }
  };
}

function sqlValue(value: unknown): SqlValue {
  return typeof value === "string" || typeof value === "number" || typeof value === "boolean"
    ? value
    : undefined;
}

/** Echoes the client's terminus and settle modes, as Service Bus does. */
function echoAttach(link: Sender | Receiver): void {
  const { remote, local } = linkState(link);
  if (remote.attach === undefined) return;
  local.attach.source = remote.attach.source;
  local.attach.target = remote.attach.target;
  local.attach.snd_settle_mode = remote.attach.snd_settle_mode;
  local.attach.rcv_settle_mode = remote.attach.rcv_settle_mode;
  local.attach.max_message_size = MAX_MESSAGE_SIZE;
}

/** One message, or every message of a batch (format 0x80013700: one data section per message). */
function decodeSent(context: EventContext): Message[] {
  const format = (context as { format?: number }).format;
  if (format === undefined || format === 0) return [context.message as Message];
  if (format !== BATCH_FORMAT)
    throw new PeerError(NOT_IMPLEMENTED, `message format ${format} is not implemented`, 501);
  const outer = rhea.message.decode(context.message as unknown as Buffer);
  const body = outer.body as { content?: unknown; multiple?: boolean } | Buffer;
  const sections: Buffer[] = Buffer.isBuffer(body)
    ? [body]
    : Array.isArray(body.content)
      ? (body.content as Buffer[])
      : [body.content as Buffer];
  return sections.map((section) => rhea.message.decode(section) as unknown as Message);
}

function bodyText(message: Message): string {
  const body = message.body as unknown;
  const bytes = Buffer.isBuffer(body)
    ? body
    : typeof body === "object" && body !== null && "content" in body && Buffer.isBuffer(body.content)
      ? body.content
      : undefined;
  if (bytes) {
    const text = bytes.toString("utf8");
    try {
      const parsed: unknown = JSON.parse(text);
      return typeof parsed === "string" ? parsed : text;
    } catch {
      return text;
    }
  }
  return typeof body === "string" ? body : JSON.stringify(body);
}

function applyProperties(stored: StoredMessage, properties: Record<string, unknown>): void {
  stored.message = {
    ...stored.message,
    application_properties: { ...(stored.message.application_properties ?? {}), ...properties },
  };
}

function insertBySeq(list: StoredMessage[], stored: StoredMessage): void {
  let index = list.length;
  while (index > 0 && (list[index - 1] as StoredMessage).seq > stored.seq) index--;
  list.splice(index, 0, stored);
}

function normalize(path: string): string {
  return path.replace(/^amqps?:\/\/[^/]+\//, "").replace(/^\/+|\/+$/g, "");
}

function tokens(value: unknown): string[] {
  return asArray(value).map((token) => (Buffer.isBuffer(token) ? rhea.uuid_to_string(token) : String(token)));
}

function asArray(value: unknown): unknown[] {
  if (Array.isArray(value)) return value;
  if (value === undefined || value === null) return [];
  return [value];
}

function toNumber(value: unknown): number {
  if (Buffer.isBuffer(value)) return Number(value.readBigInt64BE(0));
  return Number(value);
}

function toMillis(value: unknown): number | undefined {
  if (value instanceof Date) return value.getTime();
  if (typeof value === "number") return value;
  return undefined;
}

function optionalString(value: unknown): string | undefined {
  return typeof value === "string" ? value : undefined;
}

function amqpError(error: unknown): { condition: string; description: string } {
  if (error instanceof PeerError) return { condition: error.condition, description: error.message };
  return {
    condition: "amqp:internal-error",
    description: error instanceof Error ? error.message : String(error),
  };
}

/** A GUID's bytes in .NET order (first three groups little-endian): Service Bus's lock-token tags. */
function dotNetGuidBytes(guid: string): Buffer {
  const b = Buffer.from(guid.replace(/-/g, ""), "hex");
  return Buffer.from([b[3], b[2], b[1], b[0], b[5], b[4], b[7], b[6], ...b.subarray(8)] as number[]);
}
