import type { RetryPolicy } from "#shared/config/platform";

/**
 * Seconds to wait before attempt `attempt + 1`: exponential ("full jitter", as in the AWS
 * Architecture Blog's backoff study), never below one second, capped at the policy's maximum.
 */
export function retryDelaySeconds(
  policy: RetryPolicy,
  attempt: number,
  random: () => number = Math.random,
): number {
  const ceiling = Math.min(policy.maxDelaySeconds, policy.baseDelaySeconds * 2 ** Math.max(0, attempt - 1));
  return Math.max(1, Math.round(ceiling * random()));
}
