// The chaos run's worker process, bundled once per run: the fault injector first (it patches the AWS
// SDK before any client exists), then the ECS container entry exactly as deployed.
import "./faults.ts";
import "../../functions/containers/worker.ts";
