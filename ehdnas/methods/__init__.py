"""Search methods: EH-DNAS, DCP-NAS and FlowNAS's evolution, each behind one protocol, in one registry."""
