import { expect } from "chai";
import { displayUrl } from "../src/display-url.js";

describe("display-url", () => {
  it("drops a URL's user and password and leaves every other URL as it was given", () => {
    expect(displayUrl("https://user:p%40ss@hooks.example.com:8443/hook?x=1")).to.equal(
      "https://hooks.example.com:8443/hook?x=1",
    );
    expect(displayUrl("http://127.0.0.1:11434")).to.equal("http://127.0.0.1:11434");
    expect(displayUrl("http://token@host/")).to.equal("http://host/");
    expect(displayUrl("not a url")).to.equal("(invalid URL)");
  });
});
