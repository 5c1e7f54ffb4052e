// Package httpguard holds what every phoenix HTTP listener shares: the Host
// check against DNS rebinding, the server timeouts, and the warning for a
// listener that can change guests on a non-loopback address.
package httpguard
