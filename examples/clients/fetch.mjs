// The JavaScript (fetch) example of the Checkstack documentation, pointed at the hello plugin.
//   API_BASE=http://127.0.0.1:8000 API_KEY=ck_... node fetch.mjs
const API_BASE = process.env.API_BASE ?? "https://your-checkstack-instance.com";
const API_KEY = process.env.API_KEY ?? "ck_YOUR_APP_ID_YOUR_SECRET";

// Call a single procedure
async function callRpc(pluginId, procedure, input) {
  const response = await fetch(`${API_BASE}/api/${pluginId}/`, {
    method: "POST",
    headers: {
      "Authorization": `Bearer ${API_KEY}`,
      "Content-Type": "application/json",
    },
    body: JSON.stringify({ [procedure]: input ?? {} }),
  });

  if (!response.ok) {
    const error = await response.json();
    throw new Error(error.message || `HTTP ${response.status}`);
  }

  const result = await response.json();
  return result[procedure];
}

// Usage examples
const greeting = await callRpc("hello", "getGreeting", { name: "fetch" });
console.log("single:", JSON.stringify(greeting));

// Batching multiple calls
const response = await fetch(`${API_BASE}/api/hello/`, {
  method: "POST",
  headers: {
    "Authorization": `Bearer ${API_KEY}`,
    "Content-Type": "application/json",
  },
  body: JSON.stringify({
    setGreeting: { template: "Hi there, {name}!" },
    getGreeting: { name: "batch" },
  }),
});
const { setGreeting, getGreeting } = await response.json();
console.log("batch:", JSON.stringify(setGreeting), JSON.stringify(getGreeting));

// Error handling
try {
  await callRpc("hello", "setGreeting", { template: "no placeholder" });
} catch (error) {
  console.log("error:", error.message);
}
