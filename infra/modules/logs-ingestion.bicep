// Azure Monitor Logs Ingestion for the logs-ingestion sink (Microsoft Sentinel / Log Analytics):
// the custom table MdeRelayEvents_CL in an existing workspace, a data collection endpoint, a data
// collection rule whose stream Custom-MdeRelayEvents flows into that table, and Monitoring
// Metrics Publisher for the relay identity on the rule (what the upload call checks). Deployed at
// the workspace's resource group, which may be in another subscription than the relay.

targetScope = 'resourceGroup'

@description('Name of the Log Analytics workspace (in this module\'s resource group).')
param workspaceName string

@description('Prefix of the endpoint and rule names.')
param namePrefix string

@description('Principal (object) id of the relay identity.')
param principalId string

@description('Tags put on the endpoint and the rule.')
param tags object = {}

var tableName = 'MdeRelayEvents_CL'
var streamName = 'Custom-MdeRelayEvents'
var monitoringMetricsPublisher = '3913510d-42f4-4e42-8a64-420c390055eb'

resource workspace 'Microsoft.OperationalInsights/workspaces@2022-10-01' existing = {
  name: workspaceName
}

// One row per event. TenantId is a reserved column name in Log Analytics (it holds the
// workspace id), so the Defender tenant goes to MdeTenantId.
resource table 'Microsoft.OperationalInsights/workspaces/tables@2022-10-01' = {
  parent: workspace
  name: tableName
  properties: {
    plan: 'Analytics'
    schema: {
      name: tableName
      description: 'Microsoft Defender XDR Advanced Hunting events relayed by mde-relay (schema mde-relay/v1).'
      columns: [
        {
          name: 'TimeGenerated'
          type: 'datetime'
        }
        {
          name: 'Table'
          type: 'string'
        }
        {
          name: 'Id'
          type: 'string'
        }
        {
          name: 'MdeTenantId'
          type: 'string'
        }
        {
          name: 'Timestamp'
          type: 'datetime'
        }
        {
          name: 'DeviceId'
          type: 'string'
        }
        {
          name: 'DeviceName'
          type: 'string'
        }
        {
          name: 'ActionType'
          type: 'string'
        }
        {
          name: 'ReportId'
          type: 'string'
        }
        {
          name: 'Properties'
          type: 'dynamic'
        }
        {
          name: 'Source'
          type: 'dynamic'
        }
      ]
    }
  }
}

// The rule must be in the workspace's region; the endpoint goes with it.
resource endpoint 'Microsoft.Insights/dataCollectionEndpoints@2022-06-01' = {
  name: '${namePrefix}-dce'
  location: workspace.location
  tags: tags
  properties: {
    networkAcls: {
      publicNetworkAccess: 'Enabled'
    }
  }
}

// The stream declares the event as the relay sends it (normalized fields, snake_case, plus
// TimeGenerated); the transformation maps it onto the table's columns.
resource rule 'Microsoft.Insights/dataCollectionRules@2022-06-01' = {
  name: '${namePrefix}-dcr'
  location: workspace.location
  tags: tags
  properties: {
    dataCollectionEndpointId: endpoint.id
    streamDeclarations: {
      'Custom-MdeRelayEvents': {
        columns: [
          {
            name: 'TimeGenerated'
            type: 'datetime'
          }
          {
            name: 'id'
            type: 'string'
          }
          {
            name: 'table'
            type: 'string'
          }
          {
            name: 'timestamp'
            type: 'string'
          }
          {
            name: 'tenant_id'
            type: 'string'
          }
          {
            name: 'device_id'
            type: 'string'
          }
          {
            name: 'device_name'
            type: 'string'
          }
          {
            name: 'action_type'
            type: 'string'
          }
          {
            name: 'report_id'
            type: 'dynamic'
          }
          {
            name: 'properties'
            type: 'dynamic'
          }
          {
            name: 'source'
            type: 'dynamic'
          }
        ]
      }
    }
    destinations: {
      logAnalytics: [
        {
          name: 'workspace'
          workspaceResourceId: workspace.id
        }
      ]
    }
    dataFlows: [
      {
        streams: [
          streamName
        ]
        destinations: [
          'workspace'
        ]
        transformKql: 'source | project TimeGenerated, Table = tostring([\'table\']), Id = tostring([\'id\']), MdeTenantId = tostring(tenant_id), Timestamp = todatetime([\'timestamp\']), DeviceId = tostring(device_id), DeviceName = tostring(device_name), ActionType = tostring(action_type), ReportId = tostring(report_id), Properties = [\'properties\'], Source = [\'source\']'
        outputStream: 'Custom-${tableName}'
      }
    ]
  }
  dependsOn: [
    table
  ]
}

// Monitoring Metrics Publisher on the rule: the role the Logs Ingestion API checks.
resource publisher 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(rule.id, principalId, monitoringMetricsPublisher)
  scope: rule
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', monitoringMetricsPublisher)
    principalId: principalId
    principalType: 'ServicePrincipal'
  }
}

output endpoint string = endpoint.properties.logsIngestion.endpoint
output ruleImmutableId string = rule.properties.immutableId
output ruleId string = rule.id
output endpointId string = endpoint.id
output tableId string = table.id
output publisherAssignmentId string = publisher.id
output streamName string = streamName
output tableName string = tableName
