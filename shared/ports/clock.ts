/** Time and randomness as ports, so tests can control them. */
export interface Clock {
  now(): Date;
}

export const systemClock: Clock = { now: () => new Date() };
