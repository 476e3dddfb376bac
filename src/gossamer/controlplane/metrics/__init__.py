"""Golden metrics in the control plane: scraped from every sidecar, aggregated per service,
workload and edge over sliding windows (`aggregate`), served by the REST API (`routes`)."""
