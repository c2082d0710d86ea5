import { expect } from "chai";
import * as sharedStates from "../../shared/src/job-states.js";
import type { JobView } from "../../shared/src/job-view.js";
import type * as Wire from "../../shared/src/ollama-types.js";
import type * as Client from "../src/types.js";
import { isTerminalState, JOB_STATES, TERMINAL_JOB_STATES } from "../src/types.js";

/**
 * The client has no dependencies, so it keeps its own copies of the job and Ollama types. These checks hold
 * them to the server's at compile time: each pair must be assignable both ways (`pnpm typecheck` fails on
 * drift). A copy may leave out optional fields it does not use; it may not disagree about a field's type.
 */
function same<A, B>(_toServer: (client: A) => B, _toClient: (server: B) => A): void {}
const id = <T>(value: T) => value;

same<Client.KeepAlive, Wire.KeepAlive>(id, id);
same<Client.ThinkValue, Wire.ThinkValue>(id, id);
same<Client.Format, Wire.Format>(id, id);
same<Client.Options, Wire.Options>(id, id);
same<Client.Metrics, Wire.Metrics>(id, id);
same<Client.ToolCall, Wire.ToolCall>(id, id);
same<Client.Message, Wire.Message>(id, id);
same<Client.Tool, Wire.Tool>(id, id);
same<Client.ChatResponse, Wire.ChatResponse>(id, id);
same<Client.GenerateResponse, Wire.GenerateResponse>(id, id);
same<Client.JobResult, Wire.ChatResponse | Wire.GenerateResponse>(id, id);
same<Client.JobKind, JobView["kind"]>(id, id);
same<Client.JobState, sharedStates.JobState>(id, id);
same<Client.JobEventType, sharedStates.JobEventType>(id, id);
// The server cannot know a result's shape (it is the target's answer, stored as sent); the client types the
// Ollama answer that every `/jobs` job has.
same<Omit<Client.Job, "result">, Omit<JobView, "result">>(id, id);

describe("job states", () => {
  it("are the server's states, in order", () => {
    expect(JOB_STATES).to.deep.equal(sharedStates.JOB_STATES);
  });

  it("are terminal where the server's are", () => {
    expect(TERMINAL_JOB_STATES).to.deep.equal(sharedStates.TERMINAL_STATES);
    expect(JOB_STATES.filter(isTerminalState)).to.deep.equal(JOB_STATES.filter(sharedStates.isTerminal));
  });
});
