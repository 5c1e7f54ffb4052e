// Package retry holds phoenix's one backoff policy and its one Sleep: the
// pve backend's lock retries, the pve-api client's retries of locked and
// transient requests, its task polls, health-check intervals, the sim's
// latency and the lock waits all wait through it, so that Ctrl-C (a
// cancelled context) ends every wait at once and every backoff grows and is
// capped by the same rule.
//
// It is a small package of our own rather than
// k8s.io/apimachinery/pkg/util/wait, although that is already in the module
// graph through client-go, because:
//
//   - wait.Backoff only adds jitter upwards; the pve-api client spreads
//     parallel workers with jitter centred on the delay (±25%), and the
//     flags' documented meaning ("first wait, doubles each time") must not
//     change;
//   - wait.ExponentialBackoff reports ErrWaitTimeout instead of the last
//     error, while phoenix's errors name the failed command or request and
//     how many tries were made;
//   - callers here decide per error whether to retry and shape their own
//     error text, which an explicit loop over Retrier.Wait keeps readable.
//
// The controller's requeue backoff is not here: it is client-go's
// workqueue rate limiter, which is the right tool for a work queue.
package retry
