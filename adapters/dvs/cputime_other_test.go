//go:build !unix

package dvs

// cpuTime is not measured on this platform; benchmarks report wall-clock rates only.
func cpuTime() float64 { return 0 }
