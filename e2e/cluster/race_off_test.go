//go:build cluster && !race

package cluster

const raceEnabled = false
