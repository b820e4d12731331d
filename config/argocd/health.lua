-- Argo CD health check for vmregistry.io/VmRegistrySource (Lua 5.1, as Argo CD runs it).
-- Argo CD sets the global `obj` to the live object; the script returns hs.
--   Suspended   spec.suspend is true
--   Progressing no status yet, or the status (or its Ready condition) describes an
--               older generation than metadata.generation
--   Healthy     Ready is True for the current generation
--   Degraded    Ready is False or Unknown for the current generation (message: the
--               Ready condition's message)
hs = {}

if obj.spec ~= nil and obj.spec.suspend == true then
  hs.status = "Suspended"
  hs.message = "Syncing is suspended (spec.suspend is true); existing WorkloadEntries are kept"
  return hs
end

local generation = nil
if obj.metadata ~= nil then
  generation = obj.metadata.generation
end

if obj.status == nil or obj.status.observedGeneration == nil then
  hs.status = "Progressing"
  hs.message = "Waiting for the operator to report status"
  return hs
end

if generation ~= nil and obj.status.observedGeneration ~= generation then
  hs.status = "Progressing"
  hs.message = "Waiting for the operator to observe generation " .. tostring(generation) ..
    " (status describes generation " .. tostring(obj.status.observedGeneration) .. ")"
  return hs
end

local ready = nil
if obj.status.conditions ~= nil then
  for _, condition in ipairs(obj.status.conditions) do
    if condition.type == "Ready" then
      ready = condition
      break
    end
  end
end

if ready == nil then
  hs.status = "Progressing"
  hs.message = "Waiting for the Ready condition"
  return hs
end

if generation ~= nil and ready.observedGeneration ~= nil and ready.observedGeneration ~= generation then
  hs.status = "Progressing"
  hs.message = "Waiting for the Ready condition of generation " .. tostring(generation)
  return hs
end

local message = ready.message
if message == nil or message == "" then
  message = ready.reason or ""
end

if ready.status == "True" then
  hs.status = "Healthy"
  hs.message = message
  return hs
end

hs.status = "Degraded"
hs.message = message
return hs
