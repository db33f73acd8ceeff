package starter

// The versions kprep is tested with: the lab's inventory (test/lab) pins
// these same constants, so `kprep init` never offers a version the end-to-end
// suites have not installed.
const (
	// DockerVersion is the Docker CE version the starter inventory pins.
	DockerVersion = "26.1.5"
	// KubernetesVersion is the Kubernetes version the starter inventory pins.
	KubernetesVersion = "1.34.4"
)
