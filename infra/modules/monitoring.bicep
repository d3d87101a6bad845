// Log Analytics workspace + workspace-based Application Insights, with Entra-only ingestion.

targetScope = 'resourceGroup'

param location string
param tags object = {}
param workspaceName string
param appInsightsName string

@minValue(30)
@maxValue(730)
param retentionInDays int = 30

@description('Principal (object) id of the relay identity, which sends the telemetry.')
param principalId string

var monitoringMetricsPublisher = '3913510d-42f4-4e42-8a64-420c390055eb'

// Alerts (docs/operations.md). The relay logs one `event=drain_summary` JSON line per drain
// (src/metrics.rs); the Functions host forwards it to the `traces` table, where these log-based
// metrics are computed.

@description('Create the lag and dead-letter alert rules.')
param alertsEnabled bool = true

@description('Resource id of the action group the alerts notify (empty: alerts fire without notifying anyone).')
param actionGroupId string = ''

@description('Lag alert: fires when a table\'s newest delivered event is older than this many seconds.')
@minValue(60)
param lagAlertThresholdSeconds int = 1800

@description('Dead-letter alert: fires when a table dead-letters more rows than this within the window.')
@minValue(0)
param deadLetterAlertThreshold int = 0

@description('How often the alert rules run (ISO 8601 duration).')
param alertEvaluationFrequency string = 'PT5M'

@description('The period the alert rules look at (ISO 8601 duration).')
param alertWindowSize string = 'PT15M'

// One line each: the same queries appear in docs/operations.md.
var drainSummaries = 'traces | where message has "drain_summary" | extend d = parse_json(message) | where tostring(d.event) == "drain_summary" | extend table = tostring(d.table)'
var lagQuery = '${drainSummaries} | where isnotnull(d.lag_seconds) | summarize lag_seconds = max(todouble(d.lag_seconds)) by table'
var deadLetterQuery = '${drainSummaries} | summarize dead_letters = sum(tolong(d.dead_letters)) by table'
var alertActions = empty(actionGroupId) ? [] : [
  actionGroupId
]

resource workspace 'Microsoft.OperationalInsights/workspaces@2023-09-01' = {
  name: workspaceName
  location: location
  tags: tags
  properties: {
    sku: {
      name: 'PerGB2018'
    }
    retentionInDays: retentionInDays
  }
}

resource appInsights 'Microsoft.Insights/components@2020-02-02' = {
  name: appInsightsName
  location: location
  tags: tags
  kind: 'web'
  properties: {
    Application_Type: 'web'
    WorkspaceResourceId: workspace.id
    // Only Entra-authenticated senders: the connection string alone cannot write telemetry.
    DisableLocalAuth: true
  }
}

// Monitoring Metrics Publisher on the component: the Entra-authenticated ingestion of the
// host's traces, requests and metrics needs it (and nothing else does).
resource telemetryPublisher 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(appInsights.id, principalId, monitoringMetricsPublisher)
  scope: appInsights
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', monitoringMetricsPublisher)
    principalId: principalId
    principalType: 'ServicePrincipal'
  }
}

resource lagAlert 'Microsoft.Insights/scheduledQueryRules@2023-12-01' = if (alertsEnabled) {
  name: '${appInsightsName}-lag'
  location: location
  tags: tags
  properties: {
    displayName: 'mde-relay: a table is behind'
    description: 'The newest event mde-relay delivered for a table is older than ${lagAlertThresholdSeconds} s (lag_seconds of event=drain_summary). Check with `mde-relay status`; see docs/operations.md.'
    severity: 2
    enabled: true
    scopes: [
      appInsights.id
    ]
    evaluationFrequency: alertEvaluationFrequency
    windowSize: alertWindowSize
    criteria: {
      allOf: [
        {
          query: lagQuery
          timeAggregation: 'Maximum'
          metricMeasureColumn: 'lag_seconds'
          dimensions: [
            {
              name: 'table'
              operator: 'Include'
              values: [
                '*'
              ]
            }
          ]
          operator: 'GreaterThan'
          threshold: lagAlertThresholdSeconds
          failingPeriods: {
            numberOfEvaluationPeriods: 1
            minFailingPeriodsToAlert: 1
          }
        }
      ]
    }
    autoMitigate: true
    actions: {
      actionGroups: alertActions
    }
  }
}

resource deadLetterAlert 'Microsoft.Insights/scheduledQueryRules@2023-12-01' = if (alertsEnabled) {
  name: '${appInsightsName}-deadletters'
  location: location
  tags: tags
  properties: {
    displayName: 'mde-relay: rows are being dead-lettered'
    description: 'A table dead-lettered more than ${deadLetterAlertThreshold} rows in the window (dead_letters of event=drain_summary). Inspect and redrive them: docs/operations.md.'
    severity: 3
    enabled: true
    scopes: [
      appInsights.id
    ]
    evaluationFrequency: alertEvaluationFrequency
    windowSize: alertWindowSize
    criteria: {
      allOf: [
        {
          query: deadLetterQuery
          timeAggregation: 'Total'
          metricMeasureColumn: 'dead_letters'
          dimensions: [
            {
              name: 'table'
              operator: 'Include'
              values: [
                '*'
              ]
            }
          ]
          operator: 'GreaterThan'
          threshold: deadLetterAlertThreshold
          failingPeriods: {
            numberOfEvaluationPeriods: 1
            minFailingPeriodsToAlert: 1
          }
        }
      ]
    }
    autoMitigate: true
    actions: {
      actionGroups: alertActions
    }
  }
}

output name string = appInsights.name
output connectionString string = appInsights.properties.ConnectionString
output workspaceId string = workspace.id
