export { ManualClock, realClock, type SimClock } from "./clock.js";
export { DEFAULT_MODELS } from "./default-models.js";
export type {
  FaultRequest,
  FaultScope,
  FaultSnapshot,
  LoadedModel,
  RequestLogEntry,
  SimEvent,
  SimFaults,
  SimModel,
  SimStats,
  Simulator,
  SimulatorOptions,
} from "./interfaces.js";
export { startSimulator } from "./server.js";
